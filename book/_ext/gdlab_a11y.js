/* gdlab: accessible names in the theme's navbar (book/_ext/gdlab_a11y.py says why). No dependencies. */
(function () {
  "use strict";

  /* A search button that shows text ("Search", "Ctrl+K") is named by that text, not by a different aria-label. */
  function nameSearchButtonsByText() {
    document.querySelectorAll(".search-button__button[aria-label]").forEach(function (button) {
      if (button.querySelector(".search-button__default-text")) { button.removeAttribute("aria-label"); }
    });
  }

  /* The colour-mode button keeps its label; its icons are decoration: hidden, and without the <title> ("Light",
     "Dark", ...) that Font Awesome writes into each <svg> from the icon's title, which counted as the button's text. */
  function hideIcons(button) {
    button.querySelectorAll("i, svg").forEach(function (icon) {
      if (icon.getAttribute("aria-hidden") !== "true") { icon.setAttribute("aria-hidden", "true"); }
      icon.removeAttribute("title");
      icon.removeAttribute("aria-labelledby");
      if (icon.getAttribute("role") === "img") { icon.removeAttribute("role"); }
    });
    button.querySelectorAll("svg > title").forEach(function (title) { title.remove(); });
  }

  function hideThemeSwitchIcons() {
    document.querySelectorAll(".theme-switch-button").forEach(function (button) {
      hideIcons(button);
      /* Font Awesome replaces each <i> by an <svg> when it gets to it: hide those too. */
      new MutationObserver(function () { hideIcons(button); }).observe(button, {childList: true, subtree: true});
    });
  }

  /* The sidebar's expander of a section with sub-pages (the library reference) shows only a chevron: name it after
     the section ("Library reference: its pages"), else screen readers announce an unnamed summary. */
  function nameSidebarExpanders() {
    document.querySelectorAll("li.has-children > details > summary:not([aria-label])").forEach(function (summary) {
      var link = summary.parentElement.parentElement.querySelector(":scope > a");
      var name = link ? link.textContent.trim() : "";
      if (name && !summary.textContent.trim()) { summary.setAttribute("aria-label", name + ": its pages"); }
    });
  }

  function run() {
    nameSidebarExpanders();
    nameSearchButtonsByText();
    hideThemeSwitchIcons();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();
