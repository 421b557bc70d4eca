// Saved ipywidgets typeset their labels with MathJax 2's API, MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]),
// whenever window.MathJax exists; this site runs MathJax 3, which has no Hub. This gives MathJax 3 that one call:
// the element is typeset with MathJax.typesetPromise once MathJax 3 is ready. Installed on DOMContentLoaded: after
// MathJax 3 (a deferred script) has replaced window.MathJax with itself, before the widgets render (on load).
(function () {
  function queue(job) {
    var element = job && job[2];
    var mathjax = window.MathJax;
    if (!mathjax || !mathjax.startup || !mathjax.startup.promise) return;
    mathjax.startup.promise.then(function () { return mathjax.typesetPromise(element ? [element] : undefined); });
  }
  function install() {
    if (window.MathJax && !window.MathJax.Hub) window.MathJax.Hub = {Queue: queue};
  }
  document.addEventListener("DOMContentLoaded", install);
})();
