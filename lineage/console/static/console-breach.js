// The breach page's holder search: hides the holders whose name does not hold the text typed.
// Chosen holders stay visible so a choice is never hidden from the person making it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const filter = document.getElementById("holder-filter");
  const holders = document.getElementById("holders");
  if (!filter || !holders) return;
  const apply = () => {
    const wanted = filter.value.trim().toLowerCase();
    for (const option of holders.options) {
      option.hidden = wanted !== "" && !option.selected && !option.value.toLowerCase().includes(wanted);
    }
  };
  filter.addEventListener("input", apply);
  // Text typed before this script ran (or restored by the browser on going back) filters too.
  apply();
});
