// Render TeX to MathJax CHTML in node, for book/_ext/gdlab_math.py (math typeset at build time, no MathJax in pages).
//
// Usage: node gdlab_math.js <path of MathJax's es5/node-main.js>, with on stdin a JSON object
//   {"tex": <MathJax's tex options: macros, ...>, "fontURL": <where the CSS finds the woff fonts>,
//    "items": [[tex, display], ...]}
// and on stdout {"html": [<mjx-container> per item, in order], "css": <the stylesheet for every glyph used>}.
// Each container carries the expression's MathML for assistive technology (a11y/assistive-mml), as the in-browser
// MathJax of the book did. A TeX error does not stop the run: MathJax renders it as an <merror>, which the
// extension reports as a build warning.
"use strict";
const fs = require("fs");

const [mathjaxMain] = process.argv.slice(2);
const request = JSON.parse(fs.readFileSync(0, "utf8"));

require(mathjaxMain).init({
  loader: { load: ["input/tex", "output/chtml", "a11y/assistive-mml"] },
  tex: request.tex,
  chtml: { fontURL: request.fontURL },
  startup: { typeset: false },
}).then((MathJax) => {
  const adaptor = MathJax.startup.adaptor;
  const html = request.items.map(([tex, display]) => adaptor.outerHTML(MathJax.tex2chtml(tex, { display })));
  const css = adaptor.textContent(MathJax.chtmlStylesheet());
  process.stdout.write(JSON.stringify({ html, css }));
}).catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
