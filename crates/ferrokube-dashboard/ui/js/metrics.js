// Resource metrics (metrics.k8s.io/v1beta1), from a watch like everything
// else: CPU and memory per pod (summed over containers) and per node, "—"
// where there is none.

import { watch } from './watch.js';

/** Parses a Kubernetes quantity to a number (cores for CPU, bytes for memory). */
export function quantity(q) {
  if (q === undefined || q === null) return NaN;
  const m = /^([+-]?[\d.]+(?:[eE][+-]?\d+)?)([a-zA-Z]*)$/.exec(String(q).trim());
  if (!m) return NaN;
  const n = parseFloat(m[1]);
  const mult = {
    '': 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
    Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, Pi: 1024 ** 5, Ei: 1024 ** 6,
  }[m[2]];
  return mult === undefined ? NaN : n * mult;
}

/** As kubectl top: millicores and MiB. */
export function fmtCpu(cores) {
  return Number.isFinite(cores) ? Math.round(cores * 1000) + 'm' : '—';
}
export function fmtMem(bytes) {
  return Number.isFinite(bytes) ? Math.round(bytes / 1048576) + 'Mi' : '—';
}

/**
 * Watches pod or node metrics. kind: 'pods' | 'nodes'. onChange() after
 * changes (the caller batches). Returns {map: Map(ns/name → {cpu, mem}), close()}.
 * A server without the metrics API just leaves the map empty.
 */
export function watchMetrics(kind, namespace, onChange) {
  const map = new Map();
  const base = '/apis/metrics.k8s.io/v1beta1' + (kind === 'pods' && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '') + '/' + kind;
  let gen = 0;
  const seen = new Map();
  const w = watch(base, {
    onEvent(type, obj) {
      const m = obj && obj.metadata;
      if (!m) return;
      const key = (m.namespace || '') + '/' + m.name;
      if (type === 'DELETED') { map.delete(key); seen.delete(key); } else {
        let cpu = 0;
        let mem = 0;
        if (obj.usage) {
          cpu = quantity(obj.usage.cpu);
          mem = quantity(obj.usage.memory);
        } else {
          for (const c of obj.containers || []) {
            cpu += quantity(c.usage && c.usage.cpu) || 0;
            mem += quantity(c.usage && c.usage.memory) || 0;
          }
        }
        map.set(key, { cpu, mem });
        seen.set(key, gen);
      }
      onChange();
    },
    onReset() { gen++; },
    onSync() {
      for (const [k, g] of seen) if (g !== gen) { seen.delete(k); map.delete(k); }
      onChange();
    },
    onError(e, fatal) { if (fatal) onChange(); },
  });
  return { map, close: () => w.close() };
}
