// Keyboard-first review. Records are shown as text by the server; this script never builds HTML from them.
"use strict";

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function follow(id) {
  const link = document.getElementById(id);
  if (link) link.click();
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target instanceof HTMLElement) {
    const form = event.target.closest("form");
    if (form) { event.preventDefault(); form.requestSubmit(); }
    return;
  }
  if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
  if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
  const focus = (id) => { const field = document.getElementById(id); if (field) { event.preventDefault(); field.focus(); } };
  switch (event.key) {
    case "a": { const form = document.getElementById("accept-form"); if (form) form.requestSubmit(); break; }
    case "r": focus("reject-reason"); break;
    case "f": focus("fix-output"); break;
    case "/": focus("search"); break;
    case "j": case "n": follow("next"); break;
    case "k": case "p": follow("prev"); break;
  }
});

// A reject without a reason goes back to the reason field instead of the server.
document.addEventListener("DOMContentLoaded", () => {
  const reject = document.getElementById("reject-form");
  if (reject) reject.addEventListener("submit", (event) => {
    const reason = document.getElementById("reject-reason");
    if (reason && !reason.value.trim()) { event.preventDefault(); reason.focus(); reason.placeholder = "a rejection needs a reason"; }
  });
  const blind = document.getElementById("annotate-output");
  if (blind) blind.focus();
});
