// The report's only script: the offline search box, and opening folded lists before printing.
// The index (search-index.js) sets window.OFSTED_SEARCH and carries the rules that turn words into
// terms, so the query is cut and stemmed exactly as the findings were when the night built it.
(function () {
  "use strict";
  var MAX_RESULTS = 50;

  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  });

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

  // Docs containing `term` or a longer term that starts with it, with that term's idf.
  function matches(index, term, keys) {
    var found = new Map();
    keys.forEach(function (k) {
      if (k === term || k.lastIndexOf(term, 0) === 0) {
        index.terms[k].forEach(function (id) {
          found.set(id, Math.max(found.get(id) || 0, index.idf[k]));
        });
      }
    });
    return found;
  }

  function search(index, keys, query) {
    var wanted = terms(query, index.rules);
    if (!wanted.length) { return null; }
    var scores = null;
    wanted.forEach(function (t) {
      var m = matches(index, t, keys);
      if (scores === null) { scores = m; return; }
      var next = new Map();
      scores.forEach(function (s, id) { if (m.has(id)) { next.set(id, s + m.get(id)); } });
      scores = next;
    });
    return Array.from(scores.entries()).sort(function (a, b) {
      return b[1] - a[1] || (index.docs[b[0]][2] > index.docs[a[0]][2] ? 1 : -1);
    });
  }

  function show(list, status, index, ranked, query) {
    list.textContent = "";
    if (ranked === null) { status.textContent = "Type a word to search the findings."; return; }
    status.textContent = ranked.length + " result" + (ranked.length === 1 ? "" : "s") + " for “" + query + "”" +
      (ranked.length > MAX_RESULTS ? "; the best " + MAX_RESULTS + " are shown." : ".");
    ranked.slice(0, MAX_RESULTS).forEach(function (r) {
      var d = index.docs[r[0]];
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = d[0] + (d[1] ? "#" + d[1] : "");
      a.textContent = d[4];
      var meta = document.createElement("span");
      meta.className = "meta";
      meta.appendChild(a);
      meta.appendChild(document.createTextNode(" · " + d[3]));
      li.appendChild(meta);
      li.appendChild(document.createTextNode(d[5]));
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
    var keys = Object.keys(index.terms);
    var run = function () { show(list, status, index, search(index, keys, input.value), input.value.trim()); };
    input.addEventListener("input", run);
    if (input.value) { run(); }
  });
})();
