// plivo-2fa demo page: vanilla JS, no framework, no third-party code.
// It talks only to same-origin /demo/api/ endpoints, sending the session's CSRF
// token (from the page's meta tag) in X-CSRF-Token. The countdown runs on the
// server's clock: the time left is expires_at minus the server_time of the same
// reply, counted down locally and re-synced on every poll. What the server
// allows (its countries, its languages, WebOTP) comes in the page itself: the
// country and language options and the meta tags.
(function () {
  'use strict';

  var POLL_MS = 2000;
  var LOW_TIME_MS = 60 * 1000;
  // Fewer countries than this need no search field.
  var SEARCH_MIN = 8;
  // Call statuses after which the line is quiet (Plivo's CallStatus words).
  var CALL_ENDED = { completed: true, busy: true, 'no-answer': true, failed: true, canceled: true, timeout: true, rejected: true };

  function $(id) { return document.getElementById(id); }
  function meta(name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute('content') : '';
  }

  var CSRF_TOKEN = meta('csrf-token');
  var CODE_LENGTH = parseInt(meta('code-length'), 10) || 6;
  var SANDBOX = meta('demo-sandbox') === 'true';
  var WEBOTP_DOMAIN = meta('webotp-domain');

  var ui = {
    main: $('main'),
    message: $('message'),
    steps: { phone: $('step-phone'), code: $('step-code'), verified: $('step-verified'), ended: $('step-ended') },
    country: $('country'),
    countrySearch: $('country-search'),
    countryNone: $('country-none'),
    dialCode: $('dial-code'),
    phone: $('phone'),
    phoneExample: $('phone-example'),
    locale: $('locale'),
    phoneForm: $('phone-form'),
    sendButton: $('send-button'),
    sendWhatsapp: $('send-whatsapp'),
    codeForm: $('code-form'),
    code: $('code'),
    codeLead: $('code-lead'),
    codeNumber: $('code-number'),
    countdown: $('countdown'),
    delivery: $('delivery'),
    verifyButton: $('verify-button'),
    callMe: $('call-me'),
    resendSms: $('resend-sms'),
    resendWait: $('resend-wait'),
    changeNumber: $('change-number'),
    verifiedNumber: $('verified-number'),
    verifiedId: $('verified-id'),
    verifiedChannel: $('verified-channel'),
    verifyAnother: $('verify-another'),
    endedTitle: $('ended-title'),
    endedText: $('ended-text'),
    endedIcon: document.querySelector('#step-ended .result-icon'),
    sendAgain: $('send-again'),
    endedChangeNumber: $('ended-change-number'),
    sandboxFeed: $('sandbox-feed'),
    sandboxEmpty: $('sandbox-empty'),
    sandboxPeek: $('sandbox-peek'),
    sandboxPeekKind: $('sandbox-peek-kind'),
    sandboxPeekCode: $('sandbox-peek-code')
  };

  var state = {
    step: 'phone',
    verification: null,
    to: null,
    expiresAt: 0,        // performance.now() at which the code expires
    resendAt: 0,         // performance.now() from which another send is allowed
    resendLeft: true,
    sendBlockedUntil: 0, // performance.now() until which "Send code" waits (429)
    messageUntil: 0,     // the deadline the message's {wait} counts down to
    tick: null,
    poll: null,
    polling: false,      // a status request is in flight
    busy: false,
    previous: null,      // the code step left for "Use a different number"
    channel: 'sms',      // the channel of the latest send the page asked for
    fallback: null,      // {id, ended}: the fallback call the page last told of
    otp: null,           // the AbortController of a pending WebOTP request
    sandboxSeen: ''
  };

  // The countries the server sends to: [{code, name, dial, prefix, example}],
  // read from the options the server rendered, named in the page's language.
  var COUNTRIES = [];

  // ---------------------------------------------------------------- helpers

  function api(method, path, body) {
    var headers = { 'Accept': 'application/json', 'X-CSRF-Token': CSRF_TOKEN };
    var init = { method: method, headers: headers, credentials: 'same-origin', cache: 'no-store' };
    if (body) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (res.ok) return { ok: true, status: res.status, data: data };
        var retry = parseInt(res.headers.get('Retry-After') || '', 10);
        return {
          ok: false,
          status: res.status,
          error: (data && data.error) || { code: 'http_' + res.status, message: '' },
          retryAfter: isNaN(retry) ? null : retry
        };
      });
    }, function () {
      return { ok: false, status: 0, error: { code: 'network_error', message: '' }, retryAfter: null };
    });
  }

  function formatNumber(e164) {
    var m = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(e164 || '');
    return m ? '+1 ' + m[1] + ' ' + m[2] + ' ' + m[3] : (e164 || '');
  }

  function formatDuration(ms) {
    var total = Math.max(0, Math.ceil(ms / 1000));
    var m = Math.floor(total / 60);
    var s = total % 60;
    return m + ':' + (s < 10 ? '0' : '') + s;
  }

  // One way to say a wait, so every message and button that counts down to the
  // same deadline says the same thing at the same moment.
  function formatWait(ms) {
    var secs = Math.max(0, Math.ceil(ms / 1000));
    return secs >= 60 ? formatDuration(ms) : secs + ' s';
  }

  // The code in what was typed, pasted or filled in: the first run of digits
  // (spaces, dashes or dots between them allowed) that is exactly a code long,
  // so "859 258", " 859-258" or a whole SMS all give 859258; else the digits
  // typed so far.
  function codeIn(text) {
    var runs = String(text || '').match(/\d(?:[ \u00a0.\-]?\d)*/g) || [];
    for (var i = 0; i < runs.length; i++) {
      var digits = runs[i].replace(/\D/g, '');
      if (digits.length === CODE_LENGTH) return digits;
    }
    return String(text || '').replace(/\D/g, '').slice(0, CODE_LENGTH);
  }

  function fold(s) {
    return String(s).normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
  }

  function country() {
    var code = ui.country.value;
    for (var i = 0; i < COUNTRIES.length; i++) {
      if (COUNTRIES[i].code === code) return COUNTRIES[i];
    }
    return null;
  }

  // The number typed, in E.164: a full "+…" (or "00…") number wins over the
  // picker; otherwise the country's trunk prefix (the UK's 0) is dropped.
  function e164() {
    var raw = ui.phone.value.trim();
    var digits = raw.replace(/[^\d]/g, '');
    if (!digits) return '';
    if (raw.charAt(0) === '+') return '+' + digits;
    if (digits.indexOf('00') === 0) return '+' + digits.slice(2);
    var c = country();
    if (!c) return '+' + digits;
    if (c.prefix && digits.indexOf(c.prefix) === 0) digits = digits.slice(c.prefix.length);
    return '+' + c.dial + digits;
  }

  // ---------------------------------------------------------------- messages

  // `text` may hold "{wait}": it counts down to `until` (a performance.now()
  // deadline), kept in step with the buttons by render().
  function showMessage(kind, text, detail, until) {
    var el = ui.message;
    el.className = 'message' + (kind ? ' message-' + kind : '');
    el.textContent = '';
    el.hidden = false;
    state.messageUntil = until || 0;
    // A fresh text node makes screen readers announce the same words again.
    window.setTimeout(function () {
      var parts = String(text).split('{wait}');
      el.textContent = '';
      parts.forEach(function (part, i) {
        if (i > 0) {
          var wait = document.createElement('span');
          wait.className = 'wait';
          wait.textContent = formatWait((state.messageUntil || 0) - performance.now());
          el.appendChild(wait);
        }
        el.appendChild(document.createTextNode(part));
      });
      if (detail) {
        var small = document.createElement('span');
        small.className = 'message-detail';
        small.textContent = detail;
        el.appendChild(small);
      }
    }, 30);
  }

  function clearMessage() {
    ui.message.hidden = true;
    ui.message.textContent = '';
    ui.message.className = 'message';
    state.messageUntil = 0;
    ui.phone.removeAttribute('aria-invalid');
    ui.code.removeAttribute('aria-invalid');
  }

  // Plain words for the server's error codes. `wait` is Retry-After, in seconds.
  function describe(result) {
    var err = result.error || {};
    var wait = result.retryAfter;
    var later = wait ? '{wait}' : 'a moment';
    switch (err.code) {
      case 'network_error':
        return { text: 'We can’t reach the server. Check your connection and try again.' };
      case 'csrf_token_invalid':
        return { text: 'This page’s session has ended. Reload the page and try again.' };
      case 'invalid_phone_number':
        return { text: 'That doesn’t look like a valid phone number. Check the country and the number.', field: 'phone' };
      case 'invalid_code':
        return { text: 'Enter the ' + CODE_LENGTH + '-digit code.', field: 'code' };
      case 'resend_cooldown':
        return { kind: 'warning', text: 'We sent a code to this number moments ago. You can ask for another in ' + later + '.', wait: wait };
      case 'max_sends_reached':
        return { kind: 'warning', text: 'We’ve sent this code as many times as we can. Use the code you have, or wait for it to expire and start again.' };
      case 'demo_rate_limited':
        return { kind: 'warning', text: 'Too many tries from your network. You can try again in ' + later + '.', wait: wait };
      case 'plivo_error':
        return { text: 'We couldn’t send the code: the phone network (Plivo) refused or failed the request. Try again in a moment.', detail: err.message ? 'Plivo said: ' + err.message : '' };
      case 'store_unavailable':
        return { text: 'The verification service is briefly unavailable. Try again in a few seconds.' };
    }
    if (result.status === 403) {
      return { text: 'We can’t send codes to numbers in this country.', detail: err.message };
    }
    if (result.status === 429) {
      return { kind: 'warning', text: 'Too many requests. You can try again in ' + later + '.', wait: wait };
    }
    if (result.status >= 500) {
      return { text: 'Something went wrong on our side (HTTP ' + result.status + '). Try again in a moment.' };
    }
    return { text: err.message || 'Something went wrong. Try again.' };
  }

  // Shows the error; a wait it carries becomes `until`, the one deadline the
  // message and the button both count down to.
  function showError(result, until) {
    var d = describe(result);
    showMessage(d.kind || 'error', d.text, d.detail, until);
    if (d.field === 'phone') {
      ui.phone.setAttribute('aria-invalid', 'true');
      ui.phone.focus();
    } else if (d.field === 'code') {
      ui.code.setAttribute('aria-invalid', 'true');
      ui.code.focus();
    }
    return d;
  }

  // ---------------------------------------------------------------- steps

  function setStep(step, focusTarget) {
    state.step = step;
    ui.main.setAttribute('data-state', step);
    Object.keys(ui.steps).forEach(function (name) {
      var section = ui.steps[name];
      var show = name === step || (step === 'expired' || step === 'locked' || step === 'failed') && name === 'ended';
      section.hidden = !show;
    });
    if (step !== 'code') {
      stopTimers();
      stopOtp();
    }
    if (focusTarget) focusTarget.focus();
  }

  // Buttons are disabled while their request runs; the resend links only say
  // so (aria-disabled), so they keep the keyboard focus.
  function busy(button, on) {
    state.busy = on;
    if (button.classList.contains('link')) {
      if (on) button.setAttribute('aria-disabled', 'true');
    } else {
      button.disabled = on;
    }
    if (on) button.setAttribute('aria-busy', 'true');
    else button.removeAttribute('aria-busy');
  }

  function stopTimers() {
    if (state.tick) window.clearInterval(state.tick);
    if (state.poll) window.clearTimeout(state.poll);
    state.tick = null;
    state.poll = null;
  }

  // Takes in a demo reply: {verification, server_time, resend_in_secs}.
  function absorb(reply) {
    var v = reply.verification;
    state.verification = v;
    state.to = v.to;
    var left = Date.parse(v.expires_at) - Date.parse(reply.server_time);
    state.expiresAt = performance.now() + (isNaN(left) ? 0 : left);
    state.resendLeft = reply.resend_in_secs !== null && reply.resend_in_secs !== undefined;
    state.resendAt = performance.now() + (state.resendLeft ? reply.resend_in_secs * 1000 : 0);
    renderDelivery(v);
  }

  var SMS_WORDS = {
    queued: 'Text message queued',
    sent: 'Text message sent',
    delivered: 'Text message delivered',
    undelivered: 'Text message not delivered',
    failed: 'Text message failed',
    rejected: 'Text message refused'
  };
  var WHATSAPP_WORDS = {
    queued: 'WhatsApp message queued',
    sent: 'WhatsApp message sent',
    delivered: 'WhatsApp message delivered',
    read: 'WhatsApp message read',
    undelivered: 'WhatsApp message not delivered',
    failed: 'WhatsApp message failed',
    rejected: 'WhatsApp message refused'
  };
  var CALL_WORDS = {
    queued: 'We’re calling you now',
    initiated: 'We’re calling you now',
    ringing: 'We’re calling you now',
    'in-progress': 'Call in progress',
    answered: 'Call in progress',
    completed: 'Call ended',
    'no-answer': 'Call not answered',
    busy: 'Line busy',
    failed: 'Call failed',
    canceled: 'Call canceled',
    timeout: 'Call not answered',
    rejected: 'Call refused'
  };

  // The latest delivery, whichever channel: when an SMS is not delivered the
  // server calls by itself, and the page follows that call until it ends.
  function renderDelivery(v) {
    var all = v.deliveries || [];
    var d = all[all.length - 1];
    var el = ui.delivery;
    el.className = 'delivery';
    if (!d) { el.textContent = ''; return; }
    // A text message or a WhatsApp message (whose fallback is a text).
    var sms = d.channel !== 'voice';
    var words = d.channel === 'whatsapp' ? WHATSAPP_WORDS : SMS_WORDS;
    var ended = !sms && CALL_ENDED[d.status];
    var text = sms
      ? words[d.status] || (d.channel === 'whatsapp' ? 'WhatsApp message: ' : 'Text message: ') + d.status
      : CALL_WORDS[d.status] || (ended ? 'Call ended' : 'We’re calling you now');
    // A call the page did not ask for: the fallback after an SMS.
    var fallback = !sms && state.channel === 'sms';
    if (fallback) {
      var prior = null;
      all.forEach(function (x) { if (x.channel === 'sms') prior = x; });
      var reason = prior && SMS_WORDS[prior.status] && (prior.status === 'undelivered' || prior.status === 'failed' || prior.status === 'rejected')
        ? SMS_WORDS[prior.status] : 'Text message not confirmed';
      text = reason + ' · ' + text;
    }
    el.textContent = text;
    var done = d.status === 'delivered' || d.status === 'read' || (d.status === 'completed' && !(d.call && d.call.answered === false));
    if (done) el.classList.add('is-done');
    else if (sms ? ['undelivered', 'failed', 'rejected'].indexOf(d.status) >= 0 : ended) el.classList.add('is-failed');
    ui.codeLead.firstChild.textContent = sms ? 'We sent a code to ' : ended ? 'We called ' : 'We’re calling ';
    if (fallback) announceFallback(d, ended, prior);
  }

  // Tells, once per change, that the server is calling (or called) because the
  // SMS did not arrive; when that call ends, the words stop saying "calling".
  function announceFallback(d, ended, sms) {
    var seen = state.fallback;
    if (seen && seen.id === d.provider_id && seen.ended === ended) return;
    var first = !seen || seen.id !== d.provider_id;
    state.fallback = { id: d.provider_id, ended: ended };
    var number = formatNumber(state.to);
    var why = sms && (sms.status === 'undelivered' || sms.status === 'failed' || sms.status === 'rejected')
      ? 'Your text message wasn’t delivered' : 'Your text message hasn’t arrived';
    var answered = d.status === 'completed' && !(d.call && d.call.answered === false);
    if (!ended) {
      showMessage('warning', why + ', so we’re calling ' + number + ' now. Answer to hear your code.');
    } else if (answered) {
      showMessage('', (first ? why + ', so we called ' + number + '. ' : 'The call has ended. ') + 'Enter the code you heard.');
    } else {
      showMessage('warning', (first ? why + ', so we called ' + number : 'We called ' + number)
        + ', but the call didn’t go through. Ask for another call or text below.');
    }
  }

  function enterCodeStep(reply, created, channel) {
    state.channel = channel;
    state.fallback = null;
    absorb(reply);
    ui.codeNumber.textContent = formatNumber(state.to);
    ui.code.value = '';
    setStep('code', ui.code);
    if (!created) {
      showMessage('', 'A code for this number was already on its way; we sent it again.');
    }
    startTimers();
    listenForOtp();
  }

  function startTimers() {
    stopTimers();
    render();
    state.tick = window.setInterval(render, 250);
    schedulePoll(POLL_MS);
    if (SANDBOX) refreshSandbox();
  }

  function resendBlocked(now) {
    return !state.resendLeft || state.resendAt - now > 0;
  }

  function render() {
    var now = performance.now();
    var left = state.expiresAt - now;
    if (state.step === 'code') {
      if (left > 0) {
        ui.countdown.textContent = 'Expires in ' + formatDuration(left) + '.';
        ui.countdown.classList.toggle('is-low', left <= LOW_TIME_MS);
      } else {
        ui.countdown.textContent = 'Checking…';
        // The server decides: ask it now rather than trusting the local clock.
        schedulePoll(0);
      }
      var wait = state.resendAt - now;
      [ui.callMe, ui.resendSms].forEach(function (b) {
        if (resendBlocked(now) || state.busy) b.setAttribute('aria-disabled', 'true');
        else b.removeAttribute('aria-disabled');
      });
      if (!state.resendLeft) {
        ui.resendWait.textContent = '(no more sends for this code)';
      } else if (wait > 0) {
        ui.resendWait.textContent = '(available in ' + formatWait(wait) + ')';
      } else {
        ui.resendWait.textContent = '';
      }
    }
    var sendWait = state.sendBlockedUntil - now;
    if (state.step === 'phone' && sendWait > 0) {
      ui.sendButton.disabled = true;
      ui.sendButton.textContent = 'Send code (' + formatWait(sendWait) + ')';
    } else if (ui.sendButton.textContent !== 'Send code' && !state.busy) {
      ui.sendButton.disabled = false;
      ui.sendButton.textContent = 'Send code';
    }
    var waitEl = ui.message.querySelector('.wait');
    if (waitEl) {
      waitEl.textContent = state.messageUntil - now > 0 ? formatWait(state.messageUntil - now) : '0 s';
    }
  }

  function schedulePoll(delay) {
    // The request in flight schedules the next one when it ends.
    if (state.polling) return;
    if (state.poll) window.clearTimeout(state.poll);
    state.poll = window.setTimeout(poll, delay);
  }

  function poll() {
    state.poll = null;
    var v = state.verification;
    if (!v || state.step !== 'code') return;
    if (document.hidden) { schedulePoll(POLL_MS); return; }
    state.polling = true;
    api('GET', '/demo/api/verifications/' + encodeURIComponent(v.id)).then(function (result) {
      state.polling = false;
      if (state.step !== 'code' || !state.verification || state.verification.id !== v.id) return;
      if (result.ok) {
        absorb(result.data);
        if (!follow(result.data.verification)) return;
      }
      if (SANDBOX) refreshSandbox();
      schedulePoll(POLL_MS);
    });
  }

  // Moves to the state the server reports; false when the flow has ended.
  function follow(v) {
    switch (v.status) {
      case 'pending': return true;
      case 'approved': showVerified(v); return false;
      case 'expired': showEnded('expired'); return false;
      case 'max_attempts_reached': showEnded('locked'); return false;
      default: showEnded('failed', v.status); return false;
    }
  }

  function showVerified(v) {
    clearMessage();
    ui.verifiedNumber.textContent = formatNumber(v.to);
    ui.verifiedId.textContent = v.id;
    ui.verifiedChannel.textContent = v.channel === 'voice' ? 'Voice call'
      : v.channel === 'whatsapp' ? 'WhatsApp' : 'Text message';
    setStep('verified', $('verified-title'));
    if (SANDBOX) refreshSandbox();
  }

  var ENDINGS = {
    expired: {
      title: 'This code has expired',
      text: 'Codes are good for a limited time. Ask for a new one to carry on.',
      tone: 'warning',
      icon: 'clock'
    },
    locked: {
      title: 'Too many wrong codes',
      text: 'For your security this code is now closed. Ask for a new code to try again.',
      tone: 'error',
      icon: 'alert'
    },
    failed: {
      title: 'This verification has ended',
      text: 'It can no longer be completed. Ask for a new code to start again.',
      tone: 'warning',
      icon: 'alert'
    }
  };

  function showEnded(kind) {
    var e = ENDINGS[kind];
    clearMessage();
    ui.endedTitle.textContent = e.title;
    ui.endedText.textContent = e.text;
    ui.endedIcon.className = 'result-icon result-icon-' + e.tone;
    ui.endedIcon.setAttribute('data-icon', e.icon);
    setStep(kind, ui.endedTitle);
  }

  // ---------------------------------------------------------------- WebOTP

  // With WEBOTP_DOMAIN set on the server, its SMS ends "@domain #code" and a
  // phone's browser offers to fill the code in: navigator.credentials.get
  // resolves with it. Only asked where the page's host is that domain, since
  // the browser matches the two exactly.
  function listenForOtp() {
    if (state.otp || !WEBOTP_DOMAIN || WEBOTP_DOMAIN !== location.hostname) return;
    if (!('OTPCredential' in window) || !navigator.credentials || !window.AbortController) return;
    var ac = new AbortController();
    state.otp = ac;
    navigator.credentials.get({ otp: { transport: ['sms'] }, signal: ac.signal }).then(function (credential) {
      if (state.otp !== ac) return;
      state.otp = null;
      var code = codeIn(credential && credential.code);
      if (state.step !== 'code' || code.length !== CODE_LENGTH) return;
      ui.code.value = code;
      check();
    }, function () {
      if (state.otp === ac) state.otp = null;
    });
  }

  function stopOtp() {
    var ac = state.otp;
    state.otp = null;
    if (ac) ac.abort();
  }

  // ---------------------------------------------------------------- actions

  function startBody(to, channel) {
    var body = { to: to, channel: channel };
    if (ui.locale && ui.locale.value) body.locale = ui.locale.value;
    return body;
  }

  // Sends a code to `to` on `channel`. `fresh`: from the phone or ended step, so
  // the code step opens; otherwise a re-send on the open code step.
  function start(channel, button, to, fresh) {
    if (!to) {
      showMessage('error', 'Enter your phone number.');
      ui.phone.setAttribute('aria-invalid', 'true');
      ui.phone.focus();
      return;
    }
    if (state.busy) return;
    clearMessage();
    busy(button, true);
    api('POST', '/demo/api/start', startBody(to, channel)).then(function (result) {
      busy(button, false);
      if (result.ok) {
        if (!fresh) {
          state.channel = channel;
          absorb(result.data);
          showMessage('success', channel === 'voice'
            ? 'Calling ' + formatNumber(state.to) + ' now. Answer to hear your code.'
            : 'We sent the code again to ' + formatNumber(state.to) + '.');
          ui.code.focus();
          if (channel === 'sms') listenForOtp();
          if (SANDBOX) refreshSandbox();
        } else {
          enterCodeStep(result.data, result.status === 201, channel);
        }
        render();
        return;
      }
      var errCode = result.error && result.error.code;
      var prev = state.previous;
      if (fresh && errCode === 'resend_cooldown' && prev && prev.to === to) {
        resume(prev, result.retryAfter);
        return;
      }
      // What the inbox showed was for the number before: nothing was sent now.
      if (fresh) clearSandbox();
      var until = result.retryAfter ? performance.now() + result.retryAfter * 1000 : 0;
      if (until) {
        if (fresh) state.sendBlockedUntil = until;
        else state.resendAt = until;
      }
      showError(result, until);
      render();
    });
  }

  // "Call me" and "Text it again": during the cooldown they stay focusable and
  // say how long is left instead of doing nothing.
  function resend(channel, button) {
    if (state.busy) return;
    var now = performance.now();
    if (!state.resendLeft) {
      showMessage('warning', 'We’ve sent this code as many times as we can. Use the code you have, or wait for it to expire and start again.');
      return;
    }
    if (resendBlocked(now)) {
      showMessage('warning', (channel === 'voice' ? 'You can ask for a call in ' : 'You can ask for another text in ')
        + '{wait}: the code was sent moments ago and can take a minute to arrive.', '', state.resendAt);
      return;
    }
    start(channel, button, state.to, false);
  }

  function check() {
    var code = codeIn(ui.code.value);
    if (code.length !== CODE_LENGTH) {
      showMessage('error', 'Enter the ' + CODE_LENGTH + '-digit code.');
      ui.code.setAttribute('aria-invalid', 'true');
      ui.code.focus();
      return;
    }
    if (state.busy || !state.verification) return;
    clearMessage();
    busy(ui.verifyButton, true);
    api('POST', '/demo/api/check', { id: state.verification.id, code: code }).then(function (result) {
      busy(ui.verifyButton, false);
      if (result.ok) {
        absorb(result.data);
        var v = result.data.verification;
        if (v.status === 'approved') { showVerified(v); return; }
        if (!follow(v)) return;
        var n = v.attempts_remaining;
        showMessage('error', 'That code isn’t right. ' + n + (n === 1 ? ' attempt' : ' attempts') + ' left.');
        ui.code.setAttribute('aria-invalid', 'true');
        ui.code.value = '';
        ui.code.focus();
        return;
      }
      var errCode = result.error && result.error.code;
      if (errCode === 'max_attempts_reached') { showEnded('locked'); return; }
      if (errCode === 'verification_expired') { showEnded('expired'); return; }
      if (errCode === 'verification_not_found' || errCode === 'verification_not_pending') { showEnded('failed'); return; }
      showError(result);
    });
  }

  function backToPhone() {
    stopTimers();
    clearMessage();
    state.previous = state.step === 'code' ? state.verification : null;
    state.verification = null;
    setStep('phone', ui.phone);
  }

  // Back to the code step of a verification still pending for this number
  // (its code was sent moments ago, so the server would not send another yet).
  function resume(v, wait) {
    api('GET', '/demo/api/verifications/' + encodeURIComponent(v.id)).then(function (result) {
      if (!result.ok || result.data.verification.status !== 'pending') {
        state.previous = null;
        var until = wait ? performance.now() + wait * 1000 : 0;
        state.sendBlockedUntil = until;
        showError({ status: 429, error: { code: 'resend_cooldown' }, retryAfter: wait }, until);
        return;
      }
      enterCodeStep(result.data, true, state.channel);
      showMessage('warning', 'We sent a code to this number moments ago. Enter it below, or ask for another in {wait}.', '', state.resendAt);
    });
  }

  // ---------------------------------------------------------------- sandbox panel

  function refreshSandbox() {
    var v = state.verification;
    if (!SANDBOX || !v) return;
    api('GET', '/demo/api/verifications/' + encodeURIComponent(v.id) + '/sandbox').then(function (result) {
      if (!result.ok || state.verification !== v) return;
      var key = JSON.stringify(result.data);
      if (key === state.sandboxSeen) return;
      state.sandboxSeen = key;
      renderSandbox(result.data);
    });
  }

  function clearSandbox() {
    if (!SANDBOX || !ui.sandboxFeed) return;
    state.sandboxSeen = '';
    renderSandbox({ messages: [], calls: [] });
  }

  function statusClass(status) {
    if (status === 'delivered' || status === 'completed') return ' is-done';
    if (['undelivered', 'failed', 'no-answer', 'busy'].indexOf(status) >= 0) return ' is-failed';
    return '';
  }

  // Text with each run of CODE_LENGTH digits marked, built without innerHTML.
  function withCodeMarked(parent, text) {
    var re = new RegExp('(^|\\D)(\\d{' + CODE_LENGTH + '})(?!\\d)', 'g');
    var last = 0;
    var m;
    while ((m = re.exec(text)) !== null) {
      var start = m.index + m[1].length;
      parent.appendChild(document.createTextNode(text.slice(last, start)));
      var mark = document.createElement('mark');
      mark.className = 'code';
      mark.textContent = m[2];
      parent.appendChild(mark);
      last = start + m[2].length;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function deliveredItem(kind, status, text, latest) {
    var item = document.createElement('article');
    item.className = 'delivered' + (latest ? ' delivered-latest' : '');
    item.setAttribute('data-kind', kind === 'Text message' ? 'sms' : kind === 'WhatsApp message' ? 'whatsapp' : 'call');
    var head = document.createElement('div');
    head.className = 'delivered-head';
    var k = document.createElement('span');
    k.className = 'delivered-kind';
    k.textContent = kind + (latest ? ' · latest' : '');
    var s = document.createElement('span');
    s.className = 'delivered-status' + statusClass(status);
    s.textContent = status;
    head.appendChild(k);
    head.appendChild(s);
    var body = document.createElement('p');
    body.className = 'delivered-body';
    if (kind !== 'Phone call') withCodeMarked(body, text);
    else body.textContent = text || '(nothing was said)';
    item.appendChild(head);
    item.appendChild(body);
    return item;
  }

  function renderSandbox(data) {
    var feed = ui.sandboxFeed;
    while (feed.firstChild) feed.removeChild(feed.firstChild);
    var items = [];
    (data.calls || []).forEach(function (c, i) { items.push({ kind: 'Phone call', status: c.status, text: c.transcript, order: i }); });
    (data.messages || []).forEach(function (m, i) {
      items.push({ kind: m.type === 'whatsapp' ? 'WhatsApp message' : 'Text message', status: m.status, text: m.text, order: i });
    });
    if (!items.length) {
      feed.appendChild(ui.sandboxEmpty);
      peekSandbox(null);
      return;
    }
    // Each list comes newest first: the newest of the channel last used leads.
    items.sort(function (a, b) {
      if (a.order !== b.order) return a.order - b.order;
      var aFirst = (a.kind === 'Phone call') === (state.channel === 'voice');
      return aFirst ? -1 : 1;
    });
    items.forEach(function (it, i) { feed.appendChild(deliveredItem(it.kind, it.status, it.text, i === 0)); });
    peekSandbox(items[0]);
  }

  // The code in the latest delivery, repeated beside the code field (CSS shows
  // it only where the inbox is out of sight, below the form).
  function peekSandbox(item) {
    if (!ui.sandboxPeek) return;
    var code = '';
    if (item && item.kind !== 'Phone call') {
      var m = new RegExp('(^|\\D)(\\d{' + CODE_LENGTH + '})(?!\\d)').exec(item.text || '');
      code = m ? m[2] : '';
    } else if (item) {
      (item.text || '').split('\n').forEach(function (line) {
        var digits = line.replace(/\D/g, '');
        if (!code && digits.length === CODE_LENGTH) code = digits;
      });
    }
    ui.sandboxPeek.hidden = !code;
    ui.sandboxPeekKind.textContent = !item ? 'text message'
      : item.kind === 'Phone call' ? 'call' : item.kind.toLowerCase();
    ui.sandboxPeekCode.textContent = code;
  }

  // ---------------------------------------------------------------- set-up

  function displayNames(locales, type) {
    try { return new Intl.DisplayNames(locales, { type: type }); } catch (e) { return null; }
  }

  function readCountries() {
    var names = displayNames(['en'], 'region');
    Array.prototype.forEach.call(ui.country.options, function (o) {
      var name = null;
      try { name = names && names.of(o.value); } catch (e) { name = null; }
      COUNTRIES.push({
        code: o.value,
        name: name || o.value,
        dial: o.getAttribute('data-dial'),
        prefix: o.getAttribute('data-prefix') || '',
        example: o.getAttribute('data-example') || ''
      });
    });
    COUNTRIES.sort(function (a, b) { return a.name.localeCompare(b.name); });
  }

  function matches(c, query) {
    if (!query) return true;
    var digits = query.replace(/^\+/, '');
    if (/^\d+$/.test(digits)) return c.dial.indexOf(digits) === 0;
    return fold(c.name).indexOf(query) >= 0 || fold(c.code) === query;
  }

  // Fills the picker with the countries matching the search, keeping the
  // chosen one when it still matches.
  function fillCountries(query) {
    var q = fold(query || '').trim();
    var chosen = ui.country.value;
    while (ui.country.firstChild) ui.country.removeChild(ui.country.firstChild);
    var shown = COUNTRIES.filter(function (c) { return matches(c, q); });
    shown.forEach(function (c) {
      var opt = document.createElement('option');
      opt.value = c.code;
      opt.textContent = c.name + ' (+' + c.dial + ')';
      ui.country.appendChild(opt);
    });
    var keep = shown.some(function (c) { return c.code === chosen; });
    if (keep) ui.country.value = chosen;
    else if (shown.length) ui.country.value = shown[0].code;
    ui.countryNone.hidden = shown.length > 0;
    ui.country.disabled = shown.length === 0;
    countryChanged();
  }

  function initialCountry() {
    var has = function (code) { return COUNTRIES.some(function (c) { return c.code === code; }); };
    var lang = (navigator.language || 'en-US').split('-');
    var region = lang.length > 1 ? lang[lang.length - 1].toUpperCase() : '';
    // The sandbox's test numbers are US numbers.
    if (!SANDBOX && has(region)) return region;
    if (has('US')) return 'US';
    return COUNTRIES.length ? COUNTRIES[0].code : '';
  }

  function countryChanged() {
    var c = country();
    ui.dialCode.textContent = c ? '+' + c.dial : '+';
    ui.phoneExample.textContent = c && c.example ? c.example : 'your number';
  }

  // The languages the server has call (and text) wording for, each named in
  // itself; the browser's preferred one that the server has is chosen.
  function fillLocales() {
    if (!ui.locale) return;
    Array.prototype.forEach.call(ui.locale.options, function (o) {
      var names = displayNames([o.value], 'language');
      var name = null;
      try { name = names && names.of(o.value); } catch (e) { name = null; }
      if (name) o.textContent = name.charAt(0).toUpperCase() + name.slice(1);
    });
    var offered = Array.prototype.map.call(ui.locale.options, function (o) { return o.value; });
    var wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en-US'];
    for (var i = 0; i < wanted.length; i++) {
      var w = String(wanted[i]).toLowerCase();
      var exact = offered.filter(function (l) { return l.toLowerCase() === w; })[0];
      var language = offered.filter(function (l) { return l.toLowerCase().split('-')[0] === w.split('-')[0]; })[0];
      if (exact || language) { ui.locale.value = exact || language; return; }
    }
  }

  function setCode(code) {
    if (code !== ui.code.value) ui.code.value = code;
    ui.code.removeAttribute('aria-invalid');
    if (code.length === CODE_LENGTH && !state.busy) check();
  }

  function init() {
    if (!ui.main) return;
    readCountries();
    ui.country.value = initialCountry();
    fillCountries('');
    if (COUNTRIES.length >= SEARCH_MIN) {
      ui.countrySearch.hidden = false;
      ui.countrySearch.addEventListener('input', function () { fillCountries(ui.countrySearch.value); });
      ui.countrySearch.addEventListener('keydown', function (e) {
        // Enter picks the first match and moves on, rather than sending the form.
        if (e.key === 'Enter') { e.preventDefault(); ui.phone.focus(); }
      });
    }
    fillLocales();
    ui.code.setAttribute('placeholder', new Array(CODE_LENGTH + 1).join('·'));
    ui.country.addEventListener('change', countryChanged);
    ui.phoneForm.addEventListener('submit', function (e) { e.preventDefault(); start('sms', ui.sendButton, e164(), true); });
    // Offered only when the server sends codes over WhatsApp.
    if (ui.sendWhatsapp) ui.sendWhatsapp.addEventListener('click', function () { start('whatsapp', ui.sendWhatsapp, e164(), true); });
    ui.codeForm.addEventListener('submit', function (e) { e.preventDefault(); check(); });
    // No maxlength on the field: it would cut a pasted "859 258" to "859 25"
    // before the digits are picked out of it.
    ui.code.addEventListener('paste', function (e) {
      var data = e.clipboardData || window.clipboardData;
      var code = codeIn(data ? data.getData('text') : '');
      if (!code) return;
      e.preventDefault();
      setCode(code);
    });
    ui.code.addEventListener('input', function () { setCode(codeIn(ui.code.value)); });
    ui.callMe.addEventListener('click', function () { resend('voice', ui.callMe); });
    ui.resendSms.addEventListener('click', function () { resend('sms', ui.resendSms); });
    ui.changeNumber.addEventListener('click', backToPhone);
    ui.endedChangeNumber.addEventListener('click', backToPhone);
    ui.verifyAnother.addEventListener('click', function () { ui.phone.value = ''; backToPhone(); });
    ui.sendAgain.addEventListener('click', function () { start('sms', ui.sendAgain, state.to, true); });
    Array.prototype.forEach.call(document.querySelectorAll('.test-number'), function (b) {
      b.addEventListener('click', function () {
        if (state.step !== 'phone') backToPhone();
        ui.phone.value = b.getAttribute('data-number');
        ui.phone.focus();
      });
    });
    document.addEventListener('visibilitychange', function () {
      if (!document.hidden && state.step === 'code') schedulePoll(0);
    });
    window.setInterval(function () { if (state.step === 'phone') render(); }, 500);
    ui.phone.focus();
  }

  init();
}());
