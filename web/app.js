// plivo-2fa demo page: vanilla JS, no framework, no third-party code.
// It talks only to same-origin /demo/api/ endpoints, sending the session's CSRF
// token (from the page's meta tag) in X-CSRF-Token. The countdown runs on the
// server's clock: the time left is expires_at minus the server_time of the same
// reply, counted down locally and re-synced on every poll.
(function () {
  'use strict';

  // [ISO 3166 code, name, country calling code]
  var COUNTRIES = [
    ['AF', 'Afghanistan', '93'], ['AL', 'Albania', '355'], ['DZ', 'Algeria', '213'],
    ['AD', 'Andorra', '376'], ['AO', 'Angola', '244'], ['AG', 'Antigua and Barbuda', '1'],
    ['AR', 'Argentina', '54'], ['AM', 'Armenia', '374'], ['AW', 'Aruba', '297'],
    ['AU', 'Australia', '61'], ['AT', 'Austria', '43'], ['AZ', 'Azerbaijan', '994'],
    ['BS', 'Bahamas', '1'], ['BH', 'Bahrain', '973'], ['BD', 'Bangladesh', '880'],
    ['BB', 'Barbados', '1'], ['BY', 'Belarus', '375'], ['BE', 'Belgium', '32'],
    ['BZ', 'Belize', '501'], ['BJ', 'Benin', '229'], ['BM', 'Bermuda', '1'],
    ['BT', 'Bhutan', '975'], ['BO', 'Bolivia', '591'], ['BA', 'Bosnia and Herzegovina', '387'],
    ['BW', 'Botswana', '267'], ['BR', 'Brazil', '55'], ['BN', 'Brunei', '673'],
    ['BG', 'Bulgaria', '359'], ['BF', 'Burkina Faso', '226'], ['BI', 'Burundi', '257'],
    ['KH', 'Cambodia', '855'], ['CM', 'Cameroon', '237'], ['CA', 'Canada', '1'],
    ['CV', 'Cape Verde', '238'], ['KY', 'Cayman Islands', '1'], ['CF', 'Central African Republic', '236'],
    ['TD', 'Chad', '235'], ['CL', 'Chile', '56'], ['CN', 'China', '86'],
    ['CO', 'Colombia', '57'], ['KM', 'Comoros', '269'], ['CG', 'Congo', '242'],
    ['CD', 'Congo (DRC)', '243'], ['CR', 'Costa Rica', '506'], ['CI', 'Côte d’Ivoire', '225'],
    ['HR', 'Croatia', '385'], ['CU', 'Cuba', '53'], ['CW', 'Curaçao', '599'],
    ['CY', 'Cyprus', '357'], ['CZ', 'Czechia', '420'], ['DK', 'Denmark', '45'],
    ['DJ', 'Djibouti', '253'], ['DM', 'Dominica', '1'], ['DO', 'Dominican Republic', '1'],
    ['EC', 'Ecuador', '593'], ['EG', 'Egypt', '20'], ['SV', 'El Salvador', '503'],
    ['GQ', 'Equatorial Guinea', '240'], ['ER', 'Eritrea', '291'], ['EE', 'Estonia', '372'],
    ['SZ', 'Eswatini', '268'], ['ET', 'Ethiopia', '251'], ['FO', 'Faroe Islands', '298'],
    ['FJ', 'Fiji', '679'], ['FI', 'Finland', '358'], ['FR', 'France', '33'],
    ['GF', 'French Guiana', '594'], ['PF', 'French Polynesia', '689'], ['GA', 'Gabon', '241'],
    ['GM', 'Gambia', '220'], ['GE', 'Georgia', '995'], ['DE', 'Germany', '49'],
    ['GH', 'Ghana', '233'], ['GI', 'Gibraltar', '350'], ['GR', 'Greece', '30'],
    ['GL', 'Greenland', '299'], ['GD', 'Grenada', '1'], ['GP', 'Guadeloupe', '590'],
    ['GU', 'Guam', '1'], ['GT', 'Guatemala', '502'], ['GG', 'Guernsey', '44'],
    ['GN', 'Guinea', '224'], ['GW', 'Guinea-Bissau', '245'], ['GY', 'Guyana', '592'],
    ['HT', 'Haiti', '509'], ['HN', 'Honduras', '504'], ['HK', 'Hong Kong', '852'],
    ['HU', 'Hungary', '36'], ['IS', 'Iceland', '354'], ['IN', 'India', '91'],
    ['ID', 'Indonesia', '62'], ['IR', 'Iran', '98'], ['IQ', 'Iraq', '964'],
    ['IE', 'Ireland', '353'], ['IM', 'Isle of Man', '44'], ['IL', 'Israel', '972'],
    ['IT', 'Italy', '39'], ['JM', 'Jamaica', '1'], ['JP', 'Japan', '81'],
    ['JE', 'Jersey', '44'], ['JO', 'Jordan', '962'], ['KZ', 'Kazakhstan', '7'],
    ['KE', 'Kenya', '254'], ['KI', 'Kiribati', '686'], ['XK', 'Kosovo', '383'],
    ['KW', 'Kuwait', '965'], ['KG', 'Kyrgyzstan', '996'], ['LA', 'Laos', '856'],
    ['LV', 'Latvia', '371'], ['LB', 'Lebanon', '961'], ['LS', 'Lesotho', '266'],
    ['LR', 'Liberia', '231'], ['LY', 'Libya', '218'], ['LI', 'Liechtenstein', '423'],
    ['LT', 'Lithuania', '370'], ['LU', 'Luxembourg', '352'], ['MO', 'Macao', '853'],
    ['MG', 'Madagascar', '261'], ['MW', 'Malawi', '265'], ['MY', 'Malaysia', '60'],
    ['MV', 'Maldives', '960'], ['ML', 'Mali', '223'], ['MT', 'Malta', '356'],
    ['MH', 'Marshall Islands', '692'], ['MQ', 'Martinique', '596'], ['MR', 'Mauritania', '222'],
    ['MU', 'Mauritius', '230'], ['YT', 'Mayotte', '262'], ['MX', 'Mexico', '52'],
    ['FM', 'Micronesia', '691'], ['MD', 'Moldova', '373'], ['MC', 'Monaco', '377'],
    ['MN', 'Mongolia', '976'], ['ME', 'Montenegro', '382'], ['MS', 'Montserrat', '1'],
    ['MA', 'Morocco', '212'], ['MZ', 'Mozambique', '258'], ['MM', 'Myanmar', '95'],
    ['NA', 'Namibia', '264'], ['NR', 'Nauru', '674'], ['NP', 'Nepal', '977'],
    ['NL', 'Netherlands', '31'], ['NC', 'New Caledonia', '687'], ['NZ', 'New Zealand', '64'],
    ['NI', 'Nicaragua', '505'], ['NE', 'Niger', '227'], ['NG', 'Nigeria', '234'],
    ['KP', 'North Korea', '850'], ['MK', 'North Macedonia', '389'], ['MP', 'Northern Mariana Islands', '1'],
    ['NO', 'Norway', '47'], ['OM', 'Oman', '968'], ['PK', 'Pakistan', '92'],
    ['PW', 'Palau', '680'], ['PS', 'Palestine', '970'], ['PA', 'Panama', '507'],
    ['PG', 'Papua New Guinea', '675'], ['PY', 'Paraguay', '595'], ['PE', 'Peru', '51'],
    ['PH', 'Philippines', '63'], ['PL', 'Poland', '48'], ['PT', 'Portugal', '351'],
    ['PR', 'Puerto Rico', '1'], ['QA', 'Qatar', '974'], ['RE', 'Réunion', '262'],
    ['RO', 'Romania', '40'], ['RU', 'Russia', '7'], ['RW', 'Rwanda', '250'],
    ['KN', 'Saint Kitts and Nevis', '1'], ['LC', 'Saint Lucia', '1'], ['VC', 'Saint Vincent and the Grenadines', '1'],
    ['WS', 'Samoa', '685'], ['SM', 'San Marino', '378'], ['ST', 'São Tomé and Príncipe', '239'],
    ['SA', 'Saudi Arabia', '966'], ['SN', 'Senegal', '221'], ['RS', 'Serbia', '381'],
    ['SC', 'Seychelles', '248'], ['SL', 'Sierra Leone', '232'], ['SG', 'Singapore', '65'],
    ['SX', 'Sint Maarten', '1'], ['SK', 'Slovakia', '421'], ['SI', 'Slovenia', '386'],
    ['SB', 'Solomon Islands', '677'], ['SO', 'Somalia', '252'], ['ZA', 'South Africa', '27'],
    ['KR', 'South Korea', '82'], ['SS', 'South Sudan', '211'], ['ES', 'Spain', '34'],
    ['LK', 'Sri Lanka', '94'], ['SD', 'Sudan', '249'], ['SR', 'Suriname', '597'],
    ['SE', 'Sweden', '46'], ['CH', 'Switzerland', '41'], ['SY', 'Syria', '963'],
    ['TW', 'Taiwan', '886'], ['TJ', 'Tajikistan', '992'], ['TZ', 'Tanzania', '255'],
    ['TH', 'Thailand', '66'], ['TL', 'Timor-Leste', '670'], ['TG', 'Togo', '228'],
    ['TO', 'Tonga', '676'], ['TT', 'Trinidad and Tobago', '1'], ['TN', 'Tunisia', '216'],
    ['TR', 'Türkiye', '90'], ['TM', 'Turkmenistan', '993'], ['TC', 'Turks and Caicos Islands', '1'],
    ['TV', 'Tuvalu', '688'], ['UG', 'Uganda', '256'], ['UA', 'Ukraine', '380'],
    ['AE', 'United Arab Emirates', '971'], ['GB', 'United Kingdom', '44'], ['US', 'United States', '1'],
    ['UY', 'Uruguay', '598'], ['UZ', 'Uzbekistan', '998'], ['VU', 'Vanuatu', '678'],
    ['VA', 'Vatican City', '39'], ['VE', 'Venezuela', '58'], ['VN', 'Vietnam', '84'],
    ['VG', 'British Virgin Islands', '1'], ['VI', 'U.S. Virgin Islands', '1'], ['YE', 'Yemen', '967'],
    ['ZM', 'Zambia', '260'], ['ZW', 'Zimbabwe', '263']
  ];
  // Where the national number keeps its leading 0 after the country code.
  var KEEPS_LEADING_ZERO = { IT: true, SM: true, VA: true, CI: true };
  var EXAMPLES = { US: '415 555 0100', CA: '416 555 0100', GB: '7700 900123', IN: '98765 43210', DE: '1512 3456789', FR: '6 12 34 56 78', AU: '412 345 678' };

  var POLL_MS = 2000;
  var LOW_TIME_MS = 60 * 1000;

  function $(id) { return document.getElementById(id); }
  function meta(name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute('content') : '';
  }

  var CSRF_TOKEN = meta('csrf-token');
  var CODE_LENGTH = parseInt(meta('code-length'), 10) || 6;
  var SANDBOX = meta('demo-sandbox') === 'true';

  var ui = {
    main: $('main'),
    message: $('message'),
    steps: { phone: $('step-phone'), code: $('step-code'), verified: $('step-verified'), ended: $('step-ended') },
    country: $('country'),
    dialCode: $('dial-code'),
    phone: $('phone'),
    phoneExample: $('phone-example'),
    phoneForm: $('phone-form'),
    sendButton: $('send-button'),
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
    sandboxEmpty: $('sandbox-empty')
  };

  var state = {
    step: 'phone',
    verification: null,
    to: null,
    expiresAt: 0,        // performance.now() at which the code expires
    resendAt: 0,         // performance.now() from which another send is allowed
    resendLeft: true,
    sendBlockedUntil: 0, // performance.now() until which "Send code" waits (429)
    tick: null,
    poll: null,
    polling: false,      // a status request is in flight
    busy: false,
    previous: null,      // the code step left for "Use a different number"
    channel: 'sms',      // the channel of the latest send
    sandboxSeen: ''
  };

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

  function seconds(n) { return n + (n === 1 ? ' second' : ' seconds'); }

  function country() {
    var code = ui.country.value;
    for (var i = 0; i < COUNTRIES.length; i++) {
      if (COUNTRIES[i][0] === code) return COUNTRIES[i];
    }
    return ['US', 'United States', '1'];
  }

  // The number typed, in E.164: a full "+…" (or "00…") number wins over the picker.
  function e164() {
    var raw = ui.phone.value.trim();
    var digits = raw.replace(/[^\d]/g, '');
    if (!digits) return '';
    if (raw.charAt(0) === '+') return '+' + digits;
    if (digits.indexOf('00') === 0) return '+' + digits.slice(2);
    var c = country();
    if (!KEEPS_LEADING_ZERO[c[0]]) digits = digits.replace(/^0+/, '');
    if (c[2] === '1' && digits.length === 11 && digits.charAt(0) === '1') digits = digits.slice(1);
    return '+' + c[2] + digits;
  }

  // ---------------------------------------------------------------- messages

  function showMessage(kind, text, detail) {
    var el = ui.message;
    el.className = 'message' + (kind ? ' message-' + kind : '');
    el.textContent = '';
    el.hidden = false;
    // A fresh text node makes screen readers announce the same words again.
    window.setTimeout(function () {
      el.textContent = text;
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
    ui.phone.removeAttribute('aria-invalid');
    ui.code.removeAttribute('aria-invalid');
  }

  // Plain words for the server's error codes.
  function describe(result) {
    var err = result.error || {};
    var wait = result.retryAfter;
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
        return { kind: 'warning', text: 'We sent a code to this number moments ago. You can ask for another in ' + seconds(wait || 30) + '.', wait: wait };
      case 'max_sends_reached':
        return { kind: 'warning', text: 'We’ve sent this code as many times as we can. Use the code you have, or wait for it to expire and start again.' };
      case 'demo_rate_limited':
        return { kind: 'warning', text: 'Too many tries from your network. Please wait ' + formatDuration((wait || 60) * 1000) + ' and try again.', wait: wait };
      case 'plivo_error':
        return { text: 'We couldn’t send the code: the phone network (Plivo) refused or failed the request. Try again in a moment.', detail: err.message ? 'Plivo said: ' + err.message : '' };
      case 'store_unavailable':
        return { text: 'The verification service is briefly unavailable. Try again in a few seconds.' };
    }
    if (result.status === 403) {
      return { text: 'We can’t send codes to numbers in this country.', detail: err.message };
    }
    if (result.status === 429) {
      return { kind: 'warning', text: 'Too many requests. Please wait ' + seconds(wait || 30) + ' and try again.', wait: wait };
    }
    if (result.status >= 500) {
      return { text: 'Something went wrong on our side (HTTP ' + result.status + '). Try again in a moment.' };
    }
    return { text: err.message || 'Something went wrong. Try again.' };
  }

  function showError(result) {
    var d = describe(result);
    showMessage(d.kind || 'error', d.text, d.detail);
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
    if (step !== 'code') stopTimers();
    if (focusTarget) focusTarget.focus();
  }

  function busy(button, on) {
    state.busy = on;
    button.disabled = on;
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

  // The latest delivery on the channel last asked for.
  function renderDelivery(v) {
    var d = null;
    (v.deliveries || []).forEach(function (x) { if (x.channel === state.channel) d = x; });
    var el = ui.delivery;
    el.className = 'delivery';
    if (!d) { el.textContent = ''; return; }
    var sms = d.channel === 'sms';
    var words = {
      queued: sms ? 'Text message queued' : 'Call queued',
      sent: 'Text message sent',
      delivered: 'Text message delivered',
      undelivered: 'Text message not delivered',
      failed: sms ? 'Text message failed' : 'Call failed',
      ringing: 'Calling you now',
      'in-progress': 'Call in progress',
      completed: 'Call completed',
      'no-answer': 'Call not answered',
      busy: 'Line busy',
      canceled: 'Call canceled'
    };
    el.textContent = words[d.status] || ((sms ? 'Text message: ' : 'Call: ') + d.status);
    if (d.status === 'delivered' || d.status === 'completed') el.classList.add('is-done');
    if (['undelivered', 'failed', 'no-answer', 'busy', 'canceled'].indexOf(d.status) >= 0) el.classList.add('is-failed');
  }

  function enterCodeStep(reply, created, channel) {
    state.channel = channel;
    absorb(reply);
    ui.codeNumber.textContent = formatNumber(state.to);
    ui.codeLead.firstChild.textContent = channel === 'voice' ? 'We’re calling ' : 'We sent a code to ';
    ui.code.value = '';
    setStep('code', ui.code);
    if (!created) {
      showMessage('', 'A code for this number was already on its way; we sent it again.');
    }
    startTimers();
  }

  function startTimers() {
    stopTimers();
    render();
    state.tick = window.setInterval(render, 250);
    schedulePoll(POLL_MS);
    if (SANDBOX) refreshSandbox();
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
      var blocked = !state.resendLeft || wait > 0 || state.busy;
      ui.callMe.disabled = blocked;
      ui.resendSms.disabled = blocked;
      if (!state.resendLeft) {
        ui.resendWait.textContent = '(no more sends for this code)';
      } else if (wait > 0) {
        ui.resendWait.textContent = '(available in ' + Math.ceil(wait / 1000) + ' s)';
      } else {
        ui.resendWait.textContent = '';
      }
    }
    var sendWait = state.sendBlockedUntil - now;
    if (state.step === 'phone' && sendWait > 0) {
      ui.sendButton.disabled = true;
      ui.sendButton.textContent = 'Send code (' + Math.ceil(sendWait / 1000) + ' s)';
    } else if (ui.sendButton.textContent !== 'Send code' && !state.busy) {
      ui.sendButton.disabled = false;
      ui.sendButton.textContent = 'Send code';
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
    ui.verifiedChannel.textContent = v.channel === 'voice' ? 'Voice call' : 'Text message';
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

  // ---------------------------------------------------------------- actions

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
    api('POST', '/demo/api/start', { to: to, channel: channel }).then(function (result) {
      busy(button, false);
      if (result.ok) {
        if (!fresh) {
          state.channel = channel;
          absorb(result.data);
          ui.codeLead.firstChild.textContent = channel === 'voice' ? 'We’re calling ' : 'We sent a code to ';
          showMessage('success', channel === 'voice'
            ? 'Calling ' + formatNumber(state.to) + ' now. Answer to hear your code.'
            : 'We sent the code again to ' + formatNumber(state.to) + '.');
          ui.code.focus();
          if (SANDBOX) refreshSandbox();
        } else {
          enterCodeStep(result.data, result.status === 201, channel);
        }
        return;
      }
      var errCode = result.error && result.error.code;
      var prev = state.previous;
      if (fresh && errCode === 'resend_cooldown' && prev && prev.to === to) {
        resume(prev, result.retryAfter);
        return;
      }
      var d = showError(result);
      if (d.wait) {
        if (fresh) state.sendBlockedUntil = performance.now() + d.wait * 1000;
        else state.resendAt = performance.now() + d.wait * 1000;
      }
      render();
    });
  }

  function check() {
    var code = ui.code.value.replace(/\D/g, '');
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
        showError({ status: 429, error: { code: 'resend_cooldown' }, retryAfter: wait });
        return;
      }
      enterCodeStep(result.data, true, state.channel);
      showMessage('warning', 'We sent a code to this number moments ago. Enter it below, or ask for another in ' + seconds(wait || 30) + '.');
    });
  }

  // ---------------------------------------------------------------- sandbox panel

  function refreshSandbox() {
    var v = state.verification;
    if (!SANDBOX || !v) return;
    api('GET', '/demo/api/verifications/' + encodeURIComponent(v.id) + '/sandbox').then(function (result) {
      if (!result.ok) return;
      var key = JSON.stringify(result.data);
      if (key === state.sandboxSeen) return;
      state.sandboxSeen = key;
      renderSandbox(result.data);
    });
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
    item.setAttribute('data-kind', kind === 'Text message' ? 'sms' : 'call');
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
    if (kind === 'Text message') withCodeMarked(body, text);
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
    (data.messages || []).forEach(function (m, i) { items.push({ kind: 'Text message', status: m.status, text: m.text, order: i }); });
    if (!items.length) { feed.appendChild(ui.sandboxEmpty); return; }
    // Each list comes newest first: the newest of the channel last used leads.
    items.sort(function (a, b) {
      if (a.order !== b.order) return a.order - b.order;
      var aFirst = (a.kind === 'Phone call') === (state.channel === 'voice');
      return aFirst ? -1 : 1;
    });
    items.forEach(function (it, i) { feed.appendChild(deliveredItem(it.kind, it.status, it.text, i === 0)); });
  }

  // ---------------------------------------------------------------- set-up

  function fillCountries() {
    var sorted = COUNTRIES.slice().sort(function (a, b) { return a[1].localeCompare(b[1]); });
    sorted.forEach(function (c) {
      var opt = document.createElement('option');
      opt.value = c[0];
      opt.textContent = c[1] + ' (+' + c[2] + ')';
      ui.country.appendChild(opt);
    });
    var lang = (navigator.language || 'en-US').split('-');
    var region = lang.length > 1 ? lang[lang.length - 1].toUpperCase() : 'US';
    var known = COUNTRIES.some(function (c) { return c[0] === region; });
    ui.country.value = SANDBOX || !known ? 'US' : region;
    countryChanged();
  }

  function countryChanged() {
    var c = country();
    ui.dialCode.textContent = '+' + c[2];
    ui.phoneExample.textContent = EXAMPLES[c[0]] || 'your number';
  }

  function init() {
    if (!ui.main) return;
    fillCountries();
    ui.code.setAttribute('placeholder', new Array(CODE_LENGTH + 1).join('·'));
    ui.country.addEventListener('change', countryChanged);
    ui.phoneForm.addEventListener('submit', function (e) { e.preventDefault(); start('sms', ui.sendButton, e164(), true); });
    ui.codeForm.addEventListener('submit', function (e) { e.preventDefault(); check(); });
    ui.code.addEventListener('input', function () {
      var digits = ui.code.value.replace(/\D/g, '').slice(0, CODE_LENGTH);
      if (digits !== ui.code.value) ui.code.value = digits;
      ui.code.removeAttribute('aria-invalid');
      if (digits.length === CODE_LENGTH && !state.busy) check();
    });
    ui.callMe.addEventListener('click', function () { start('voice', ui.callMe, state.to, false); });
    ui.resendSms.addEventListener('click', function () { start('sms', ui.resendSms, state.to, false); });
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
