// The report's only script: the offline search box, and opening folded lists before printing.
// The index (search-index.js) sets window.OFSTED_SEARCH and carries the rules that turn words into
// terms, so the query is cut and stemmed exactly as the findings were when the night built it.
(function () {
  "use strict";
  var MAX_RESULTS = 50;

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

  function stem(word, rules) {
    for (var i = 0; i < rules.suffixes.length; i++) {
      var suffix = rules.suffixes[i][0], replacement = rules.suffixes[i][1];
      if (word.length > suffix.length && word.slice(-suffix.length) === suffix &&
          word.length - suffix.length + replacement.length >= rules.min_stem) {
        if (suffix === "s" && word.slice(-2) === "ss") { return word; }
        return word.slice(0, word.length - suffix.length) + replacement;
      }
    }
    return word;
  }

  function terms(text, rules) {
    var stop = new Set(rules.stop);
    return (text.toLowerCase().match(/[a-z0-9]+/g) || [])
      .filter(function (w) { return w.length > 1 && !stop.has(w); })
      .map(function (w) { return stem(w, rules); });
  }

  function ids(encoded) {
    var out = [], last = 0;
    encoded.split(",").forEach(function (d) { last += parseInt(d, 36); out.push(last); });
    return out;
  }

  // {id: idf} of the texts (or pages) with `term` or a longer term that starts with it.
  function matches(postings, keys, term, total) {
    var found = new Map();
    keys.forEach(function (k) {
      if (k.lastIndexOf(term, 0) === 0) {
        var list = ids(postings[k]), idf = Math.log(1 + total / list.length);
        list.forEach(function (id) { found.set(id, Math.max(found.get(id) || 0, idf)); });
      }
    });
    return found;
  }

  // Findings matching every query term (in their text or their authority's name), best first.
  function search(index, keys, query) {
    var wanted = terms(query, index.rules);
    if (!wanted.length) { return null; }
    var per = wanted.map(function (t) {
      return {texts: matches(index.terms, keys.texts, t, index.texts.length),
              pages: matches(index.page_terms, keys.pages, t, index.pages.length)};
    });
    var ranked = [];
    index.docs.forEach(function (d, n) {
      var page = index.inspections[d[0]][0], score = 0;
      for (var i = 0; i < per.length; i++) {
        if (per[i].texts.has(d[3])) { score += per[i].texts.get(d[3]); }
        else if (per[i].pages.has(page)) { score += 0.01; }
        else { return; }
      }
      ranked.push([n, score]);
    });
    return ranked.sort(function (a, b) {
      var da = index.inspections[index.docs[a[0]][0]][2], db = index.inspections[index.docs[b[0]][0]][2];
      return b[1] - a[1] || (db > da ? 1 : db < da ? -1 : a[0] - b[0]);
    });
  }

  function formatDate(iso) {
    var d = new Date(iso + "T00:00:00Z");
    return isNaN(d) ? iso : d.toLocaleDateString("en-GB", {day: "numeric", month: "short", year: "numeric",
                                                           timeZone: "UTC"});
  }

  function show(list, status, index, ranked, query) {
    list.textContent = "";
    if (ranked === null) { status.textContent = "Type a word to search the findings."; return; }
    status.textContent = ranked.length + " result" + (ranked.length === 1 ? "" : "s") + " for “" + query + "”" +
      (ranked.length > MAX_RESULTS ? "; the best " + MAX_RESULTS + " are shown." : ".");
    ranked.slice(0, MAX_RESULTS).forEach(function (r) {
      var d = index.docs[r[0]], inspection = index.inspections[d[0]], page = index.pages[inspection[0]];
      var category = index.categories[d[1]];
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = page[0] + "#" + inspection[1] + "-" + category[0] + "-" + d[2];
      a.textContent = page[1] + ", " + formatDate(inspection[2]);
      var meta = document.createElement("span");
      meta.className = "meta";
      meta.appendChild(a);
      meta.appendChild(document.createTextNode(" · " + category[1]));
      li.appendChild(meta);
      li.appendChild(document.createTextNode(index.texts[d[3]]));
      list.appendChild(li);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var input = document.getElementById("q");
    if (!input) { return; }
    var list = document.getElementById("search-results");
    var status = document.getElementById("search-status");
    var index = window.OFSTED_SEARCH;
    if (!index) { status.textContent = "The search index (search-index.js) is missing beside this page."; return; }
    var keys = {texts: Object.keys(index.terms), pages: Object.keys(index.page_terms)};
    var run = function () { show(list, status, index, search(index, keys, input.value), input.value.trim()); };
    input.addEventListener("input", run);
    if (input.value) { run(); }
  });
})();
