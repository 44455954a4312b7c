/* global document, localStorage, alert */
// The Montage page: plain DOM over the JSON API. Every call goes through api(), which adds the API key when one is set.
const $ = (sel) => document.querySelector(sel);
const keyInput = $('#apikey');
keyInput.value = localStorage.getItem('montage-key') ?? '';
keyInput.addEventListener('change', () => localStorage.setItem('montage-key', keyInput.value));

function authHeaders() {
  const k = keyInput.value.trim();
  return k ? { authorization: `Bearer ${k}`, 'x-api-key': k } : {};
}

async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: { ...authHeaders(), ...(opts.headers ?? {}) } });
  const text = await res.text();
  const body = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(body?.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`);
  return body;
}

const post = (path, body) => api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

/** A poster image; with an API key it is fetched with the key's header (an <img> cannot send one). */
function poster(url) {
  const img = el('img', { alt: '', loading: 'lazy' });
  if (!keyInput.value.trim()) img.src = url;
  else
    fetch(url, { headers: authHeaders() })
      .then((r) => r.blob())
      .then((b) => (img.src = URL.createObjectURL(b)));
  return img;
}

const fmt = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;

function card(hit, why) {
  const scores = [`score ${hit.score.toFixed(3)}`];
  for (const [m, v] of Object.entries(hit.modalityScores ?? {})) scores.push(`${m} ${Number(v).toFixed(2)}`);
  const c = el(
    'div',
    { class: 'card', 'data-video': hit.videoId, onclick: () => showSimilar(hit) },
    poster(hit.posterUrl),
    el('div', { class: 't' }, hit.title),
    el('div', { class: 's' }, `${scores.join(' · ')} · ${hit.modalities.join('+')} · ${fmt(hit.durationS)}`),
  );
  if (why) c.append(el('div', { class: 'why' }, why));
  if (hit.moments?.length) {
    const m = el('div', { class: 'moments' });
    for (const mo of hit.moments) {
      m.append(
        el(
          'button',
          { type: 'button', title: `score ${mo.score?.toFixed?.(3) ?? ''}`, onclick: (ev) => (ev.stopPropagation(), play(hit, mo.startS)) },
          `▶ ${fmt(mo.startS)}–${fmt(mo.endS)}`,
        ),
      );
    }
    c.append(m);
  }
  return c;
}

/**
 * Plays the video from `startS`. Without an API key the browser fetches only the bytes it needs (HTTP range
 * requests); a <video> cannot send a key's header, so with one the file is fetched whole with it and played from
 * memory.
 */
async function play(hit, startS) {
  const v = $('#player');
  $('#player-box').hidden = false;
  $('#player-title').textContent = `${hit.title} from ${fmt(startS)}`;
  const url = `/v1/videos/${hit.videoId}/media`;
  if (v.src.startsWith('blob:')) URL.revokeObjectURL(v.src);
  if (!keyInput.value.trim()) v.src = `${url}#t=${startS}`;
  else {
    const res = await fetch(url, { headers: authHeaders() });
    if (!res.ok) return void ($('#player-title').textContent = `could not load the video (HTTP ${res.status})`);
    v.src = URL.createObjectURL(await res.blob());
  }
  v.currentTime = startS;
  v.play().catch(() => {});
}

async function showSimilar(hit) {
  $('#similar-title').hidden = false;
  $('#similar-title').textContent = `Similar to “${hit.title}”`;
  const box = $('#similar');
  box.replaceChildren('…');
  try {
    const { hits } = await api(`/v1/videos/${hit.videoId}/similar?limit=8`);
    box.replaceChildren(...hits.map((h) => card(h)));
    if (!hits.length) box.replaceChildren(el('p', { class: 'muted' }, 'nothing similar yet'));
  } catch (err) {
    box.replaceChildren(el('p', { class: 'muted' }, String(err.message)));
  }
}

$('#search-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const text = $('#q').value.trim();
  if (!text) return;
  $('#search-status').textContent = 'searching…';
  try {
    const t0 = performance.now();
    const { hits } = await post('/v1/search', { text, limit: 12, moments: $('#moments').checked });
    $('#search-status').textContent = `${hits.length} results in ${Math.round(performance.now() - t0)} ms`;
    $('#results').replaceChildren(...hits.map((h) => card(h)));
  } catch (err) {
    $('#search-status').textContent = err.message;
  }
});

$('#upload-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const job = $('#job');
  const bar = $('#job-progress');
  job.textContent = 'uploading…';
  try {
    const res = await api('/v1/videos', { method: 'POST', body: form });
    bar.hidden = false;
    for (;;) {
      const j = await api(`/v1/jobs/${encodeURIComponent(res.jobId)}`);
      bar.value = j.progress;
      const eta = j.etaS != null && j.state !== 'completed' ? `, about ${j.etaS} s left` : '';
      job.textContent = `${j.state}${j.stage ? ` · ${j.stage}` : ''} · ${j.progress}%${eta}${j.error ? ` · ${j.error.code}: ${j.error.message}` : ''}`;
      job.dataset.state = j.state;
      if (j.state === 'completed' || j.state === 'failed') break;
      await new Promise((r) => setTimeout(r, 300));
    }
    refreshQueue();
  } catch (err) {
    job.textContent = err.message;
    job.dataset.state = 'error';
  }
});

$('#user-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const user = $('#user').value.trim();
  if (!user) return;
  try {
    const [history, recs] = await Promise.all([
      api(`/v1/users/${encodeURIComponent(user)}/history?limit=10`),
      api(`/v1/users/${encodeURIComponent(user)}/recommendations?limit=6`),
    ]);
    $('#history').replaceChildren(
      ...history.items.map((i) =>
        el('li', {}, `${i.title ?? i.videoId} `, el('span', { class: 'muted' }, new Date(i.timestamp).toLocaleString())),
      ),
    );
    if (!history.items.length) $('#history').replaceChildren(el('li', { class: 'muted' }, 'no history yet'));
    $('#rec-source').textContent = `(${recs.source})`;
    const why = (h, i) =>
      recs.source === 'personal'
        ? `close to what ${user} watched (${h.score.toFixed(2)})`
        : i % 2 === 0
          ? 'popular with everyone'
          : 'new upload';
    $('#recs').replaceChildren(...recs.hits.map((h, i) => card(h, why(h, i))));
  } catch (err) {
    $('#history').replaceChildren(el('li', { class: 'muted' }, err.message));
  }
});

async function refreshQueue() {
  try {
    const q = await api('/v1/queue?limit=10');
    const states = ['waiting', 'active', 'delayed', 'completed', 'failed'];
    $('#queue').replaceChildren(
      el('tr', {}, el('th', {}, 'queue'), ...states.map((s) => el('th', {}, s))),
      ...Object.entries(q.counts).map(([name, c]) =>
        el('tr', {}, el('td', {}, name), ...states.map((s) => el('td', {}, String(c[s] ?? 0)))),
      ),
    );
    $('#failed').replaceChildren(
      ...q.failed.map((f) =>
        el(
          'li',
          {},
          el('code', {}, f.error.code),
          ` ${f.type} ${f.videoId ?? f.id} `,
          el(
            'button',
            {
              type: 'button',
              onclick: () => post(`/v1/jobs/${f.type}/${encodeURIComponent(f.id)}/retry`, {}).then(refreshQueue, (e) => alert(e.message)),
            },
            'retry',
          ),
        ),
      ),
    );
    if (!q.failed.length) $('#failed').replaceChildren(el('li', { class: 'muted' }, 'none'));
  } catch (err) {
    $('#queue').replaceChildren(el('tr', {}, el('td', {}, err.message)));
  }
}
async function refreshWebhooks() {
  const list = $('#webhooks');
  try {
    const { webhooks } = await api('/v1/webhooks');
    const items = await Promise.all(
      webhooks.map(async (w) => {
        const { deliveries } = await api(`/v1/webhooks/${w.id}/deliveries`);
        const rows = deliveries
          .slice(0, 5)
          .map((d) =>
            el(
              'li',
              { class: 'delivery', 'data-state': d.state },
              `${d.event} · ${d.state} · ${d.attempts} tries${d.lastStatus ? ` · HTTP ${d.lastStatus}` : ''}${d.lastError && d.state !== 'delivered' ? ` · ${d.lastError}` : ''}`,
            ),
          );
        return el('li', {}, el('code', {}, w.url), ` ${w.events.join(', ')}`, el('ul', {}, ...rows));
      }),
    );
    list.replaceChildren(...items);
    if (!items.length) list.replaceChildren(el('li', { class: 'muted' }, 'no subscriptions'));
  } catch (err) {
    list.replaceChildren(el('li', { class: 'muted' }, err.message));
  }
}

$('#webhook-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    await post('/v1/webhooks', { url: f.get('url'), secret: f.get('secret'), events: f.getAll('events') });
    ev.target.reset();
  } catch (err) {
    alert(err.message);
  }
  refreshWebhooks();
});

$('#queue-refresh').addEventListener('click', () => (refreshQueue(), refreshWebhooks()));
refreshQueue();
refreshWebhooks();
setInterval(() => (refreshQueue(), refreshWebhooks()), 5000);
