/* The webcare chat widget. Embed with one tag:
 *
 *   <script src="https://your-webcare/webchat/widget.js" defer></script>
 *
 * Optional attributes: data-title="…" (the panel's title), data-open="true" (open at once),
 * data-agent-label="…" (the label over a person's reply; default "Medewerker").
 *
 * Why it is written this way:
 * - Text from the server or the visitor is only ever set with textContent, never as HTML, so a
 *   message containing <script> or <img onerror> is shown as the characters it is.
 * - The conversation id lives in localStorage, so a reload or a new tab continues the same
 *   conversation; on every (re)connect the server sends the transcript, so nothing is lost.
 * - Every message carries its own id and is resent until the server acknowledges it; the
 *   server takes a repeated id in once, so a flaky connection never duplicates a question.
 * - Reconnects back off from 0.5 s to 15 s, so a restarting server is not hammered.
 * - No dependencies, no build step; plain ES5-compatible code for old municipal browsers.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.__webcareWidget) { return; }
  window.__webcareWidget = true;

  var base = new URL(script.src, window.location.href);
  var wsUrl = (base.protocol === 'https:' ? 'wss://' : 'ws://') + base.host + '/webchat/ws';
  var STORAGE_KEY = 'webcare.conversation';
  var title = script.getAttribute('data-title') || 'Chat';
  var startOpen = script.getAttribute('data-open') === 'true';
  var agentLabel = script.getAttribute('data-agent-label') || 'Medewerker';

  function stored() {
    try { return window.localStorage.getItem(STORAGE_KEY); } catch (e) { return null; }
  }
  function store(id) {
    try { window.localStorage.setItem(STORAGE_KEY, id); } catch (e) { /* private mode */ }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  if (!document.querySelector('link[data-webcare]')) {
    var css = document.createElement('link');
    css.rel = 'stylesheet';
    css.href = new URL('/webchat/widget.css', base).href;
    css.setAttribute('data-webcare', '');
    document.head.appendChild(css);
  }

  var root = el('div', 'webcare-chat');
  root.id = 'webcare-chat';
  var panel = el('section', 'webcare-panel');
  panel.setAttribute('aria-label', title);
  var header = el('div', 'webcare-header');
  header.appendChild(el('span', 'webcare-title', title));
  var status = el('span', 'webcare-status', 'verbinden…');
  status.id = 'webcare-status';
  header.appendChild(status);
  var close = el('button', 'webcare-close', '×');
  close.type = 'button';
  close.setAttribute('aria-label', 'Sluiten');
  header.appendChild(close);
  var log = el('ol', 'webcare-log');
  log.id = 'webcare-log';
  log.setAttribute('aria-live', 'polite');
  var form = el('form', 'webcare-form');
  var input = el('input', 'webcare-input');
  input.id = 'webcare-input';
  input.type = 'text';
  input.autocomplete = 'off';
  input.maxLength = 2000;
  input.placeholder = 'Typ uw vraag…';
  input.setAttribute('aria-label', 'Uw bericht');
  var send = el('button', 'webcare-send', 'Verstuur');
  send.id = 'webcare-send';
  send.type = 'submit';
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(header);
  panel.appendChild(log);
  panel.appendChild(form);
  var launcher = el('button', 'webcare-launcher', 'Chat met ons');
  launcher.type = 'button';
  launcher.id = 'webcare-launcher';
  root.appendChild(panel);
  root.appendChild(launcher);

  function setOpen(open) {
    panel.hidden = !open;
    launcher.hidden = open;
    if (open) { input.focus(); }
  }
  launcher.addEventListener('click', function () { setOpen(true); });
  close.addEventListener('click', function () { setOpen(false); });

  var conversation = stored();
  var seen = {};
  var unacked = [];
  var socket = null;
  var delay = 500;
  var counter = 0;

  function newId() {
    var bytes = new Uint8Array(8);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    var hex = '';
    for (var i = 0; i < bytes.length; i++) { hex += ('0' + bytes[i].toString(16)).slice(-2); }
    counter += 1;
    return hex + '-' + counter;
  }

  // A person's reply (from the inbox) is labelled, so the visitor knows a human took over.
  // The server sends the last lines of a long conversation; older ones come on request.
  function offerEarlier() {
    if (log.querySelector('.webcare-earlier')) { return; }
    var button = el('button', 'webcare-earlier', 'eerdere berichten');
    button.type = 'button';
    button.addEventListener('click', function () {
      if (socket && socket.readyState === 1) {
        socket.send(JSON.stringify({ type: 'earlier', skip: log.querySelectorAll('.webcare-msg').length }));
      }
    });
    log.insertBefore(button, log.firstChild);
  }

  function render(item, before) {
    if (seen[item.id]) { return; }
    seen[item.id] = true;
    var line;
    if (item.from === 'agent') {
      line = el('li', 'webcare-msg webcare-agent');
      line.appendChild(el('span', 'webcare-from', agentLabel));
      line.appendChild(el('span', 'webcare-text', item.text));
    } else {
      var kind = item.from === 'visitor' ? 'webcare-visitor' : 'webcare-reply';
      line = el('li', 'webcare-msg ' + kind, item.text);
    }
    line.setAttribute('data-id', item.id);
    if (before) { log.insertBefore(line, before); return; }
    log.appendChild(line);
    log.scrollTop = log.scrollHeight;
  }

  function notice(text) {
    log.appendChild(el('li', 'webcare-notice', text));
    log.scrollTop = log.scrollHeight;
  }

  function transmit(message) {
    if (socket && socket.readyState === 1) {
      socket.send(JSON.stringify({ type: 'message', id: message.id, text: message.text }));
    }
  }

  function receive(event) {
    var frame;
    try { frame = JSON.parse(event.data); } catch (e) { return; }
    if (frame.type === 'hello') {
      conversation = frame.conversation;
      store(conversation);
      delay = 500;
      status.textContent = 'online';
    } else if (frame.type === 'transcript') {
      for (var i = 0; i < frame.items.length; i++) { render(frame.items[i]); }
      if (frame.earlier) { offerEarlier(); }
      for (var j = 0; j < unacked.length; j++) { transmit(unacked[j]); }
    } else if (frame.type === 'earlier') {
      // Older lines go above what is shown, oldest first.
      var first = log.firstChild;
      if (first && first.className === 'webcare-earlier') { first = first.nextSibling; }
      for (var k = 0; k < frame.items.length; k++) { render(frame.items[k], first); }
      var button = log.querySelector('.webcare-earlier');
      if (button && !frame.more) { log.removeChild(button); }
    } else if (frame.type === 'ack') {
      unacked = unacked.filter(function (m) { return m.id !== frame.id; });
    } else if (frame.type === 'reply') {
      render(frame);
    } else if (frame.type === 'error') {
      notice(frame.error);
    }
  }

  function connect() {
    var url = wsUrl + (conversation ? '?conversation=' + encodeURIComponent(conversation) : '');
    socket = new WebSocket(url);
    socket.onmessage = receive;
    socket.onclose = function () {
      status.textContent = 'opnieuw verbinden…';
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var text = input.value.replace(/^\s+|\s+$/g, '');
    if (!text) { return; }
    input.value = '';
    var message = { id: newId(), text: text };
    unacked.push(message);
    render({ from: 'visitor', id: message.id, text: text });
    transmit(message);
  });

  function mount() {
    document.body.appendChild(root);
    setOpen(startOpen);
    connect();
  }
  if (document.body) { mount(); } else { document.addEventListener('DOMContentLoaded', mount); }
})();
