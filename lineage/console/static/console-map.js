"use strict";
// After map.js fills the details panel for a holder, offer the breach page with it preselected (to a
// responder; other roles are told who runs it, rather than sent to a page that refuses them).
// Built with DOM calls and textContent only: a holder's name is data, never markup.
(function () {
  const svg = document.getElementById("map"), details = document.getElementById("details");
  if (!svg || !details) return;
  svg.addEventListener("click", ev => {
    const node = ev.target.closest(".node");
    if (!node || !node.dataset.name || node.dataset.column === "0") return;
    const p = document.createElement("p");
    if (details.dataset.breach === "yes") {
      const a = document.createElement("a");
      a.className = "button";
      a.href = "/breach?holder=" + encodeURIComponent(node.dataset.name);
      a.textContent = "Breach impact for this holder";
      p.appendChild(a);
    } else {  // no button that leads to a refusal: say who can run it instead
      const note = document.createElement("span");
      note.className = "note";
      note.textContent = "Breach impact is run by an incident responder: ask one, naming this holder.";
      p.appendChild(note);
    }
    const r = document.createElement("a");
    r.href = "/registers#transfers";
    r.textContent = " Transfers register";
    p.appendChild(r);
    details.appendChild(p);
  });
})();
