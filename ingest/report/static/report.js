// The report's only script: the offline search box, and opening folded lists before printing.
// The index (search-index.js) sets window.OFSTED_SEARCH with what the warehouse computed: the
// token rules, every word's term (the vocabulary: this script never stems), the BM25 weights in
// millionths. So a query finds and ranks here exactly what `ofsted search` and
// marts.search_findings find (dbt_project/macros/search_index.sql): every word must match (or
// any, when asked), stop words are dropped, a word no finding has matches nothing, best score
// first and ties in finding_key order. Data reaches the page as text nodes only.
(function () {
  "use strict";
  var PAGE_SIZE = 20;
  var EMPTY = "empty search: give one or more words, e.g. thresholds";

  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  });

  // A table wider than its column says so ("Scroll sideways ..."): class "scrolls" on its wrapper.
  function markScrollingTables() {
    document.querySelectorAll(".table-wrap").forEach(function (w) {
      w.classList.toggle("scrolls", w.scrollWidth > w.clientWidth + 1);
    });
  }
  window.addEventListener("load", markScrollingTables);
  window.addEventListener("resize", markScrollingTables);
  document.addEventListener("toggle", markScrollingTables, true);

  // --- the search itself: pure functions of the index and the query ----------------------------

  function fromBase36(s) { return parseInt(s, 36); }

  // DuckDB's lower() maps each character to one (U+0130 to "i"); JavaScript's to "i" + U+0307.
  function lower(text) { return text.replace(/\u0130/g, "i").toLowerCase(); }

  function prepare(index) {
    var r = index.rules;
    var vocabulary = new Map();
    index.words.forEach(function (list, termId) {
      var term = index.terms[termId];
      list.split(" ").forEach(function (w) {
        if (w) { vocabulary.set(w.charAt(0) === "~" ? term + w.slice(1) : w, termId); }
      });
    });
    var textDocs = index.texts.map(function () { return []; });
    index.docs.forEach(function (d, n) { textDocs[d[3]].push(n); });
    return {
      index: index,
      apostrophes: new RegExp(r.apostrophes, "g"),
      separators: new RegExp(r.separators),
      vocabulary: vocabulary,
      stop: new Set(index.stop),
      textDocs: textDocs
    };
  }

  // The words of a text as the warehouse cuts them (marts.search_words).
  function words(s, text) {
    return lower(text).replace(s.apostrophes, "").split(s.separators).filter(function (w) { return w !== ""; });
  }

  function postings(s, termId) {
    var out = [], last = 0, list = s.index.postings[termId];
    list.split(",").forEach(function (pair) {
      var i = pair.indexOf(":");
      last += fromBase36(pair.slice(0, i));
      out.push([last, fromBase36(pair.slice(i + 1))]);
    });
    return out;
  }

  // {error} for a query `ofsted search` refuses (with its words), else {terms, unknown, stopOnly,
  // hits: [[doc, score in millionths]] best first}. `filters`: category, region, year ids or null.
  function search(s, query, anyWord, filters) {
    var r = s.index.rules;
    if (query.trim() === "") { return {error: EMPTY, blank: true}; }
    var chars = Array.from(query).length;
    if (chars > r.max_chars) {
      return {error: "search too long: " + chars.toLocaleString("en-GB") + " characters (at most " +
                     r.max_chars.toLocaleString("en-GB") + ")"};
    }
    var ws = words(s, query);
    if (!ws.length) { return {error: EMPTY}; }
    if (ws.length > r.max_words) { return {error: "search has " + ws.length + " words (at most " + r.max_words + ")"}; }
    var termIds = new Set(), unknown = [];
    Array.from(new Set(ws)).forEach(function (w) {
      if (s.stop.has(w)) { return; }
      if (s.vocabulary.has(w)) { termIds.add(s.vocabulary.get(w)); } else { unknown.push(w); }
    });
    var result = {terms: termIds, unknown: unknown.sort(), stopOnly: !termIds.size && !unknown.length, hits: []};
    if (!termIds.size || (!anyWord && unknown.length)) { return result; }
    var score = new Map(), count = new Map();
    termIds.forEach(function (t) {
      postings(s, t).forEach(function (p) {
        score.set(p[0], (score.get(p[0]) || 0) + p[1]);
        count.set(p[0], (count.get(p[0]) || 0) + 1);
      });
    });
    var docs = s.index.docs;
    score.forEach(function (sc, text) {
      if (!anyWord && count.get(text) !== termIds.size) { return; }
      s.textDocs[text].forEach(function (n) {
        var d = docs[n], inspection = s.index.inspections[d[0]];
        if (filters && ((filters.category !== null && d[1] !== filters.category) ||
                        (filters.region !== null && inspection[3] !== filters.region) ||
                        (filters.year !== null && inspection[4] !== filters.year))) { return; }
        result.hits.push([n, sc]);
      });
    });
    result.hits.sort(function (a, b) { return b[1] - a[1] || a[0] - b[0]; });
    return result;
  }

  // --- the page ------------------------------------------------------------------------------

  function formatDate(iso) {
    var d = new Date(iso + "T00:00:00Z");
    return isNaN(d) ? iso : d.toLocaleDateString("en-GB", {day: "numeric", month: "short", year: "numeric",
                                                           timeZone: "UTC"});
  }

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) { e.className = className; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  // The text with every word whose term was searched for in a <mark> (text nodes only).
  function highlighted(s, text, termIds) {
    var frag = document.createDocumentFragment(), pos = 0, m;
    var token = /[\p{L}\p{N}'\u2019]+/gu;
    while ((m = token.exec(text)) !== null) {
      var hit = words(s, m[0]).some(function (w) {
        return s.vocabulary.has(w) && termIds.has(s.vocabulary.get(w));
      });
      if (!hit) { continue; }
      if (m.index > pos) { frag.appendChild(document.createTextNode(text.slice(pos, m.index))); }
      frag.appendChild(el("mark", "", m[0]));
      pos = m.index + m[0].length;
    }
    if (pos < text.length) { frag.appendChild(document.createTextNode(text.slice(pos))); }
    return frag;
  }

  function plural(n, word) { return n.toLocaleString("en-GB") + " " + word + (n === 1 ? "" : "s"); }

  function describe(result, query, anyWord) {
    var quoted = "“" + query.trim() + "”";
    if (result.stopOnly) { return "0 findings: " + quoted + " has only common words (stop words), which are not searched for."; }
    var text = plural(result.hits.length, "finding") + " for " + quoted +
      (anyWord ? " (any of the words)" : " (every word)");
    if (result.unknown.length) {
      text += "; no finding has the word" + (result.unknown.length > 1 ? "s " : " ") +
        result.unknown.map(function (w) { return "‘" + w + "’"; }).join(", ");
    }
    return text + ".";
  }

  function showPage(ui, s, state) {
    var index = s.index, hits = state.result.hits;
    ui.list.textContent = "";
    var first = state.page * PAGE_SIZE;
    ui.list.start = first + 1;
    hits.slice(first, first + PAGE_SIZE).forEach(function (h) {
      var d = index.docs[h[0]], category = index.categories[d[1]];
      var li = el("li"), meta = el("span", "meta");
      var inspection = index.inspections[d[0]], linked = inspection[0] >= 0;
      if (linked) {
        var page = index.pages[inspection[0]], a = el("a", "", page[1] + ", " + formatDate(inspection[2]));
        a.href = page[0] + "#" + inspection[1] + "-" + category[0] + "-" + d[2];
        meta.appendChild(a);
      }
      meta.appendChild(document.createTextNode((linked ? " · " : "") + category[1] + " · " +
                                               index.regions[inspection[3]] + " · score " +
                                               (h[1] / index.rules.scale).toFixed(3)));
      li.appendChild(meta);
      li.appendChild(highlighted(s, index.texts[d[3]], state.result.terms));
      ui.list.appendChild(li);
    });
    var pages = Math.max(1, Math.ceil(hits.length / PAGE_SIZE));
    ui.pager.hidden = hits.length <= PAGE_SIZE;
    ui.where.textContent = hits.length ? "Findings " + (first + 1).toLocaleString("en-GB") + "–" +
      Math.min(first + PAGE_SIZE, hits.length).toLocaleString("en-GB") + " of " +
      hits.length.toLocaleString("en-GB") + " (page " + (state.page + 1) + " of " + pages + ")" : "";
    ui.prev.disabled = state.page === 0;
    ui.next.disabled = state.page + 1 >= pages;
  }

  function fillSelect(select, labels) {
    labels.forEach(function (label, n) {
      var o = el("option", "", label);
      o.value = String(n);
      select.appendChild(o);
    });
  }

  function chosen(select) { return select.value === "" ? null : Number(select.value); }

  document.addEventListener("DOMContentLoaded", function () {
    var input = document.getElementById("q");
    if (!input) { return; }
    var ui = {
      form: input.form, list: document.getElementById("search-results"),
      status: document.getElementById("search-status"), any: document.getElementById("search-any"),
      category: document.getElementById("search-category"), region: document.getElementById("search-region"),
      year: document.getElementById("search-year"), pager: document.getElementById("search-pager"),
      prev: document.getElementById("search-prev"), next: document.getElementById("search-next"),
      where: document.getElementById("search-where")
    };
    var index = window.OFSTED_SEARCH;
    if (!index || index.missing) {
      ui.status.textContent = index ? "Search is not available: " + index.missing + "."
        : "The search index (search-index.js) is missing beside this page.";
      input.disabled = true;
      return;
    }
    var s = prepare(index);
    fillSelect(ui.category, index.categories.map(function (c) { return c[1]; }));
    fillSelect(ui.region, index.regions);
    fillSelect(ui.year, index.years);
    var state = {result: null, page: 0};
    var run = function () {
      var filters = {category: chosen(ui.category), region: chosen(ui.region), year: chosen(ui.year)};
      var result = search(s, input.value, ui.any.checked, filters);
      state.page = 0;
      if (result.error) {
        state.result = null;
        ui.list.textContent = "";
        ui.pager.hidden = true;
        ui.status.textContent = result.blank ? "Type a word to search the findings." : "Cannot search: " + result.error + ".";
        return;
      }
      state.result = result;
      ui.status.textContent = describe(result, input.value, ui.any.checked);
      showPage(ui, s, state);
    };
    ui.form.addEventListener("submit", function (e) { e.preventDefault(); run(); });
    input.addEventListener("input", run);
    [ui.any, ui.category, ui.region, ui.year].forEach(function (c) { c.addEventListener("change", run); });
    ui.prev.addEventListener("click", function () {
      if (state.result && state.page > 0) { state.page -= 1; showPage(ui, s, state); }
    });
    ui.next.addEventListener("click", function () {
      if (state.result && (state.page + 1) * PAGE_SIZE < state.result.hits.length) {
        state.page += 1;
        showPage(ui, s, state);
      }
    });
    // for the parity test and the curious: the same function the box calls
    window.ofstedSearch = function (query, anyWord) {
      var r = search(s, query, Boolean(anyWord), null);
      return r.error ? {error: r.error} : {hits: r.hits, unknown: r.unknown};
    };
    if (input.value) { run(); }
  });
})();
