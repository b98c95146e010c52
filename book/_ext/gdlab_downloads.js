// The download menu of the page header (sphinx-book-theme): its entries are links that open in a new tab, so the
// browser shows a notebook or a Markdown source as text instead of saving it. Give each one the `download`
// attribute with the file's name, so that each entry does what it says (book/_ext/gdlab_pdf.py).
(function () {
  function markDownloads() {
    document.querySelectorAll(".dropdown-download-buttons a.dropdown-item").forEach(function (link) {
      var name = decodeURIComponent(new URL(link.href, document.baseURI).pathname.split("/").pop());
      link.setAttribute("download", name);
      link.removeAttribute("target");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", markDownloads);
  } else {
    markDownloads();
  }
})();
