"use strict";
// After map.js fills the details panel for a holder, offer the breach page with it preselected.
// Built with DOM calls and textContent only: a holder's name is data, never markup.
(function () {
  const svg = document.getElementById("map"), details = document.getElementById("details");
  if (!svg || !details) return;
  svg.addEventListener("click", ev => {
    const node = ev.target.closest(".node");
    if (!node || !node.dataset.name || node.dataset.column === "0") return;
    const p = document.createElement("p");
    const a = document.createElement("a");
    a.className = "button";
    a.href = "/breach?holder=" + encodeURIComponent(node.dataset.name);
    a.textContent = "Breach impact for this holder";
    p.appendChild(a);
    const r = document.createElement("a");
    r.href = "/registers#transfers";
    r.textContent = " Transfers register";
    p.appendChild(r);
    details.appendChild(p);
  });
})();
