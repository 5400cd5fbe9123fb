// Bounded waits and assertions whose message names the client, the case and
// the first wrong event.

import { sleep } from './server.mjs';

export class CaseError extends Error {}

// Poll cond every 10 ms until it holds; throw with what() after ms.
export async function until(cond, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond())
      return;
    if (Date.now() >= deadline)
      throw new CaseError(`timed out after ${ms} ms: ${what()}`);
    await sleep(10);
  }
}

const show = (v) => {
  const s = JSON.stringify(v);
  return s.length > 160 ? `${s.slice(0, 100)}…(${s.length} chars)…${s.slice(-40)}` : s;
};

// got and expected are lists (of strings or plain objects compared by the
// keys of the expected one).
export function expectEvents(client, kase, got, expected) {
  const same = (g, e) => {
    if (typeof e !== 'object' || e === null)
      return g === e;
    return Object.keys(e).every((k) => g?.[k] === e[k]);
  };
  const pick = (g, e) => (typeof e === 'object' && e !== null && g
    ? Object.fromEntries(Object.keys(e).map((k) => [k, g[k]])) : g);
  const n = Math.max(got.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (i >= got.length)
      throw new CaseError(`${client}: ${kase}: event #${i + 1} missing: ` +
          `expected ${show(expected[i])} (got ${got.length} of ${expected.length})`);
    if (i >= expected.length)
      throw new CaseError(`${client}: ${kase}: unexpected event #${i + 1}: ` +
          `${show(got[i])} (expected only ${expected.length})`);
    if (!same(got[i], expected[i]))
      throw new CaseError(`${client}: ${kase}: event #${i + 1} wrong: ` +
          `expected ${show(expected[i])}, got ${show(pick(got[i], expected[i]))}`);
  }
}

// ["1", "2", ..., "n"] (or from a to b)
export function range(a, b) {
  if (b === undefined)
    [a, b] = [1, a];
  const out = [];
  for (let i = a; i <= b; i++)
    out.push(String(i));
  return out;
}

// Wait until stream has n events; the message says who and where.
export function waitEvents(stream, n, ms, kase) {
  return until(() => stream.events.length >= n, ms, () =>
    `${stream.client}: ${kase}: ${stream.events.length} of ${n} events; last ` +
    `${show(stream.events.at(-1) ?? null)}, readyState ${stream.readyState()}`);
}

// Wait until stream has received an event with this data.
export function waitData(stream, data, ms, kase) {
  return until(() => stream.events.some((e) => e.data === data), ms, () =>
    `${stream.client}: ${kase}: no event ${show(data)} among ${stream.events.length}; ` +
    `last ${show(stream.events.at(-1) ?? null)}, readyState ${stream.readyState()}`);
}
