// Folded proofs (book/_ext/gdlab_proofs.py): when the address points inside a folded proof (a link to one of its
// equations), open that proof so that the target shows, on load and on every change of the address's fragment.
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
})();
