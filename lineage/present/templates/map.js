
"use strict";
const DATA = JSON.parse(document.getElementById("map-data").textContent);
const svg = document.getElementById("map"), tip = document.getElementById("tip");
const details = document.getElementById("details");
const ESC = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"};
function esc(s) { return String(s).replace(/[&<>"]/g, c => ESC[c]); }
function label(id) { const n = DATA.nodes[id]; return n.name + (n.region ? " (" + n.region + ")" : ""); }
function summary(el) {
  const id = el.dataset.id;
  if (el.classList.contains("node")) {
    const n = DATA.nodes[id];
    return esc(label(id)) + " · " + esc(n.role || "source") + "<br>" + n.events_in + " events in, " + n.events_out +
      " out" + (n.violations.length ? "<br>⚠ " + n.violations.length + " policy violation(s)" : "");
  }
  const f = DATA.edges[id];
  return esc(label(f.src)) + " → " + esc(label(f.dst)) + "<br>" + f.events + " events, " + f.subjects + " subjects" +
    (f.cross_border ? "<br>cross-border via " + esc(f.mechanisms.filter(Boolean).join(", ") || "no mechanism") : "") +
    (f.violations.length ? "<br>⚠ " + f.violations.length + " policy violation(s)" : "");
}
function violations(list) {
  if (!list.length) return "";
  const more = list.length > 50 ? "<dd class='v'>and " + (list.length - 50) + " more: see the table below</dd>" : "";
  return "<dt class='v'>Policy violations (" + list.length + ")</dt>" + list.slice(0, 50).map(v =>
    "<dd class='v'>" + esc(v.organisation) + ", " + esc(v.clause) + ": " + esc(v.detail) + " <code>" +
    esc(v.event_id) + "</code></dd>").join("") + more;
}
function show(el) {
  const id = el.dataset.id;
  let body;
  if (el.classList.contains("node")) {
    const n = DATA.nodes[id];
    body = "<h2>" + esc(label(id)) + "</h2><dl><dt>Role</dt><dd>" + esc(n.role || "source of data") + "</dd>" +
      (n.organisations.length ? "<dt>Organisations</dt><dd>" + esc(n.organisations.join(", ")) + "</dd>" : "") +
      "<dt>Events</dt><dd>" + n.events_in + " in, " + n.events_out + " out</dd>" + violations(n.violations) + "</dl>";
  } else {
    const f = DATA.edges[id];
    body = "<h2>" + esc(label(f.src)) + " → " + esc(label(f.dst)) + "</h2><dl>" +
      "<dt>Cross-border</dt><dd>" + (f.cross_border ? "yes, via " + esc(f.mechanisms.filter(Boolean).join(", ") ||
      "no mechanism recorded") : "no") + "</dd><dt>Events</dt><dd>" + f.events + " (" + f.bulk_events +
      " bulk exports)</dd><dt>Subjects</dt><dd>" + f.subjects + "</dd><dt>Categories</dt><dd>" +
      esc(f.categories.join(", ")) + "</dd><dt>Seen</dt><dd>" + esc(f.first_seen) + " to " + esc(f.last_seen) +
      "</dd>" + violations(f.violations) + "</dl>";
  }
  details.innerHTML = body;
  details.dataset.shown = id;
}
function focus(el) {
  svg.querySelectorAll(".lit").forEach(x => x.classList.remove("lit"));
  if (!el) { svg.classList.remove("focus"); return; }
  const id = el.dataset.id;
  svg.querySelectorAll(".edge").forEach(x => {
    if (x === el || x.dataset.src === id || x.dataset.dst === id) x.classList.add("lit");
  });
  svg.classList.add("focus");
}
svg.addEventListener("mousemove", ev => {
  const el = ev.target.closest(".node, .edge");
  if (!el) { tip.style.display = "none"; focus(null); return; }
  tip.innerHTML = summary(el);
  tip.style.display = "block";
  tip.style.left = (ev.clientX + 14) + "px";
  tip.style.top = (ev.clientY + 14) + "px";
  focus(el);
});
svg.addEventListener("mouseleave", () => { tip.style.display = "none"; focus(null); });
svg.addEventListener("click", ev => { const el = ev.target.closest(".node, .edge"); if (el) show(el); });
