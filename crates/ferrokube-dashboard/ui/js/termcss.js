// Adds the terminal's and logs view's stylesheet (css/term.css) to the page
// once, for whichever of the two modules is mounted first.

let cssAdded = false;

/** Adds term.css to the page once. */
export function ensureCss() {
  if (cssAdded || typeof document === 'undefined') return;
  cssAdded = true;
  const href = new URL('../css/term.css', import.meta.url).href;
  for (const l of document.querySelectorAll('link[rel=stylesheet]')) {
    if (l.href === href) return;
  }
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = href;
  document.head.appendChild(link);
}
