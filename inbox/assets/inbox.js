// The inbox's only script. The pages work without it; with it:
// - the queue refreshes itself when the server says something changed (server-sent events):
//   it fetches the queue fragment with the page's filters and swaps the live sections, and the
//   title counts what waits unclaimed; an escalation page refreshes its live sections;
// - desktop notifications for new escalations, and for one that was reopened or whose customer
//   wrote again (a row's `data-news` changed), once the person asked for them (a button in the
//   header; the choice is kept in this browser). They name the escalation, team, priority and
//   what happened, never the customer's words: a desktop is seen by whoever passes by;
// - keyboard shortcuts: j/k move through the queue, o or Enter opens, c claims, r replies,
//   e resolves, n jumps to the next escalation, / searches;
// - choosing a canned reply fills the reply box so it can be edited before sending.
(function () {
  'use strict';
  var busy = false, again = false;
  var queues = document.getElementById('queues');
  var known = null; // ids of the escalations in the queue, to tell new ones

  function typing() {
    var el = document.activeElement;
    return el && (el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' ||
      (el.tagName === 'INPUT' && el.type !== 'hidden' && el.type !== 'checkbox'));
  }

  function ids(root) {
    var out = {};
    root.querySelectorAll('tr.escalation').forEach(function (tr) { out[tr.dataset.id] = tr; });
    return out;
  }

  function setTitle(count) {
    var base = document.body.dataset.title || document.title;
    document.title = (count > 0 ? '(' + count + ') ' : '') + base;
  }

  // A new escalation, or one that waits on us again: reopened, or its customer wrote again
  // after an answer (its `data-news` changed to a new time).
  function notifyNew(fresh, words) {
    if (!window.Notification || Notification.permission !== 'granted') return;
    if (localStorage.getItem('webcare-notify') !== 'on' || known === null) return;
    Object.keys(fresh).forEach(function (id) {
      var tr = fresh[id], before = known[id], what = '';
      var reopened = tr.dataset.reopened !== '0';
      if (before) {
        if (!tr.dataset.news || before.dataset.news === tr.dataset.news) return;
        reopened = before.dataset.reopened !== tr.dataset.reopened;
        what = reopened ? words.reopened : words.followUp;
      } else if (reopened) {
        what = words.reopened;
      }
      var table = tr.closest('table');
      var prio = tr.children[1] ? tr.children[1].textContent : '';
      // The tag names the event, so a second follow-up is a new notification, not a silent
      // replacement of the first.
      var n = new Notification('#' + id + ' · ' + (table ? table.dataset.team : ''), {
        body: what ? prio + ' · ' + what : prio, tag: 'webcare-' + id + '-' + tr.dataset.news
      });
      n.onclick = function () { window.focus(); location.href = tr.dataset.href; };
    });
  }

  function swap(fresh) {
    ['summary', 'queues'].forEach(function (id) {
      var old = document.getElementById(id);
      var next = fresh.querySelector('#' + id);
      if (old && next) old.replaceWith(next);
    });
  }

  function refreshQueue() {
    var section = document.getElementById('queues');
    var query = section ? section.dataset.query : '';
    return fetch('/inbox/queue' + (query ? '?' + query : ''), { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, 'text/html');
        var found = ids(fresh);
        var words = fresh.getElementById('queues');
        notifyNew(found, words ? words.dataset : {});
        known = found;
        var selected = current() && current().dataset.id;
        swap(fresh);
        var section = document.getElementById('queues');
        if (section) setTitle(parseInt(section.dataset.count, 10) || 0);
        if (selected) select(document.getElementById('esc-' + selected));
      });
  }

  function refreshPage() {
    if (typing()) return Promise.resolve();
    return fetch(location.href, { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, 'text/html');
        document.querySelectorAll('[data-live]').forEach(function (old) {
          var next = fresh.getElementById(old.id);
          if (next) old.replaceWith(next);
        });
      });
  }

  // One refresh at a time; changes during one cause one more afterwards.
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var run = queues ? refreshQueue() : refreshPage();
    run.catch(function (e) { document.documentElement.dataset.refreshError = String(e); }).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }

  if (window.EventSource && document.querySelector('[data-live]')) {
    if (queues) known = ids(document);
    var source = new EventSource('/inbox/events');
    var opened = false;
    var heard = 0;
    source.addEventListener('changed', function () {
      // Counted on the page, so a test (or a curious colleague) can see the stream works.
      document.documentElement.dataset.changes = String(++heard);
      refresh();
    });
    // After a reconnect (a restart of the service) the page may have missed changes.
    source.addEventListener('open', function () {
      if (opened) refresh();
      opened = true;
      document.documentElement.dataset.live = 'on';
    });
    source.addEventListener('error', function () { document.documentElement.dataset.live = 'off'; });
  }

  // Desktop notifications: offered only where the browser has them; asked for on a click.
  var toggle = document.getElementById('notify-toggle');
  if (toggle && window.Notification && queues) {
    var on = function () {
      return Notification.permission === 'granted' && localStorage.getItem('webcare-notify') === 'on';
    };
    var label = function () {
      toggle.textContent = on() ? toggle.dataset.on : toggle.dataset.off;
      toggle.setAttribute('aria-pressed', on() ? 'true' : 'false');
    };
    toggle.dataset.off = toggle.textContent;
    toggle.hidden = false;
    label();
    toggle.addEventListener('click', function () {
      if (on()) { localStorage.setItem('webcare-notify', 'off'); label(); return; }
      Notification.requestPermission().then(function (permission) {
        localStorage.setItem('webcare-notify', permission === 'granted' ? 'on' : 'off');
        label();
      });
    });
  }

  // Keyboard shortcuts.
  function rows() { return Array.prototype.slice.call(document.querySelectorAll('tr.escalation')); }
  function current() { return document.querySelector('tr.escalation.selected'); }
  function select(tr) {
    var was = current();
    if (was) was.classList.remove('selected');
    if (tr) { tr.classList.add('selected'); tr.scrollIntoView({ block: 'nearest' }); }
  }
  function move(step) {
    var all = rows();
    if (!all.length) return;
    var at = all.indexOf(current());
    select(all[Math.max(0, Math.min(all.length - 1, at < 0 ? 0 : at + step))]);
  }
  function press(id) {
    var el = document.getElementById(id);
    if (el) { el.click(); return true; }
    return false;
  }
  document.addEventListener('keydown', function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing()) return;
    var row = current();
    switch (event.key) {
      case 'j': move(1); break;
      case 'k': move(-1); break;
      case 'o': case 'Enter':
        if (!row) return;
        location.href = row.dataset.href; break;
      case 'c':
        if (row) { var claim = row.querySelector('button.claim'); if (claim) claim.click(); }
        else if (!press('claim')) return;
        break;
      case 'r':
        var box = document.getElementById('reply-text');
        if (box) box.focus();
        else if (row) location.href = row.dataset.href + '#reply-text';
        else return;
        break;
      case 'e': if (!press('resolve')) return; break;
      case 'n':
        if (!press('next')) { if (row) move(1); else move(0); }
        break;
      case '/':
        var search = document.getElementById('search');
        if (!search) return;
        search.focus(); break;
      default: return;
    }
    event.preventDefault();
  });

  // A canned reply fills the reply box, to be edited before sending.
  document.addEventListener('change', function (event) {
    var select = event.target;
    if (select.name !== 'canned') return;
    var option = select.selectedOptions[0];
    var box = select.form && select.form.querySelector('textarea[name=text]');
    if (box && option && option.dataset.text) { box.value = option.dataset.text; box.focus(); }
  });

  if (location.hash === '#reply-text') {
    var box = document.getElementById('reply-text');
    if (box) box.focus();
  }
  if (queues) setTitle(parseInt(queues.dataset.count, 10) || 0);
})();
