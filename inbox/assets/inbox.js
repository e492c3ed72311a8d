// The inbox's only script. The pages work without it; with it, the live parts of a page
// (marked data-live) refresh when the server says something changed, and choosing a canned
// reply fills the reply box so it can be edited before sending.
(function () {
  'use strict';
  var busy = false;
  function typing() {
    var el = document.activeElement;
    return el && (el.tagName === 'TEXTAREA' || (el.tagName === 'INPUT' && el.type !== 'hidden'));
  }
  function refresh() {
    if (busy || typing()) return;
    busy = true;
    fetch(location.href, { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, 'text/html');
        document.querySelectorAll('[data-live]').forEach(function (old) {
          var next = fresh.getElementById(old.id);
          if (next) old.replaceWith(next);
        });
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  if (window.EventSource && document.querySelector('[data-live]')) {
    var source = new EventSource('/inbox/events');
    source.addEventListener('changed', refresh);
  }
  document.addEventListener('change', function (event) {
    var select = event.target;
    if (select.name !== 'canned') return;
    var option = select.selectedOptions[0];
    var box = select.form && select.form.querySelector('textarea[name=text]');
    if (box && option && option.dataset.text) box.value = option.dataset.text;
  });
})();
