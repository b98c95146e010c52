// Folded proofs (book/_ext/gdlab_proofs.py): when the address points at a folded proof or inside one (a link to
// one of its equations), open that proof so that the target shows, on load and on every change of the address's
// fragment. Printed from the browser, the page shows every proof (as sphinx-togglebutton does for the solutions).
(() => {
  const openTarget = () => {
    const id = decodeURIComponent(window.location.hash.slice(1));
    const target = id && document.getElementById(id);
    const folded = target && target.closest("details.gdlab-proof:not([open])");
    if (folded) {
      folded.open = true;
      target.scrollIntoView();
    }
  };
  window.addEventListener("hashchange", openTarget);
  openTarget();
  let closedForPrint = [];
  window.addEventListener("beforeprint", () => {
    closedForPrint = [...document.querySelectorAll("details.gdlab-proof:not([open])")];
    closedForPrint.forEach((folded) => { folded.open = true; });
  });
  window.addEventListener("afterprint", () => {
    closedForPrint.forEach((folded) => { folded.open = false; });
    closedForPrint = [];
  });
})();
