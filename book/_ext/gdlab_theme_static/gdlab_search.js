/* Search snippets without raw math (loaded by the search page only; see book/_ext/gdlab_theme.py).
 *
 * Sphinx's search page (searchtools.js) fetches each result's page and cuts a snippet out of its text
 * (Search.htmlToText). In that HTML, math is TeX between delimiters (\( ... \), \[ ... \]) or, when math is
 * rendered at build time, MathJax markup: neither reads as text. This wraps Search.htmlToText so that every math
 * element, and any TeX left between math delimiters, becomes an ellipsis before the snippet is cut.
 */
(() => {
  "use strict";
  const ELLIPSIS = "\u2026";
  // Sphinx's math elements (span.math / div.math), MathJax's output, MathML.
  const MATH_ELEMENTS = ".math, mjx-container, .MathJax, math";
  const TEX = /\\\([\s\S]*?\\\)|\\\[[\s\S]*?\\\]|\$\$[\s\S]*?\$\$|\\begin\{([A-Za-z*]+)\}[\s\S]*?\\end\{\1\}/g;

  /** The HTML page ``html`` with each math element replaced by an ellipsis. */
  const withoutMathElements = (html) => {
    const doc = new DOMParser().parseFromString(html, "text/html");
    doc.querySelectorAll(MATH_ELEMENTS).forEach((el) => el.replaceWith(` ${ELLIPSIS} `));
    return doc.documentElement.outerHTML;
  };

  /** ``text`` with any TeX between math delimiters replaced by an ellipsis. */
  const withoutTex = (text) => text.replace(TEX, ELLIPSIS);

  /** Wrap Search.htmlToText once, when searchtools.js has defined Search. */
  const patch = () => {
    if (typeof Search === "undefined" || Search.gdlabWithoutMath) return;
    const htmlToText = Search.htmlToText;
    Search.htmlToText = (html, anchor) => withoutTex(htmlToText(withoutMathElements(html), anchor));
    Search.gdlabWithoutMath = true;
  };

  patch();
  document.addEventListener("DOMContentLoaded", patch);
})();
