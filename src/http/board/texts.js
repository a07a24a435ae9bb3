"use strict";
// The texts of the board's pages, every language's inlined by the server where the marker
// stands. The page speaks the first of the browser's languages the board has, English
// otherwise; elements name their text with `data-text`.
window.presenceTexts = (() => {
  const all = /*TEXTS*/null;
  const pick = () => {
    for (const wanted of navigator.languages || [navigator.language || "en"]) {
      const primary = wanted.toLowerCase().split("-")[0];
      if (all.languages[primary]) return primary;
      if (all.aliases[primary]) return all.aliases[primary];
    }
    return "en";
  };
  const language = pick();
  /** How times are written: the browser's own variant of the page's language (en-GB writes
   *  14:00, en-US 2:00 PM), else the browser's own way (`undefined`): a Swedish browser reads
   *  English texts with Swedish times. */
  const locale = (navigator.languages || []).find((wanted) => {
    const primary = wanted.toLowerCase().split("-")[0];
    return primary === language || all.aliases[primary] === language;
  }) || undefined;
  const texts = all.languages[language];
  const english = all.languages.en;
  /** The text for `key`, each `{name}` in it replaced by `values[name]`. */
  const t = (key, values = {}) =>
    (texts[key] ?? english[key] ?? key).replace(/\{(\w+)\}/g, (marker, name) =>
      name in values ? String(values[name]) : marker);
  /** Fills every `data-text` element under `root`, and names the page's language. */
  const apply = (root = document) => {
    document.documentElement.lang = language;
    for (const element of root.querySelectorAll("[data-text]")) {
      element.textContent = t(element.dataset.text);
    }
  };
  return { language, locale, t, apply };
})();
