// The safeguarding desk: new open incidents appear without reloading, and a running audit
// check shows its progress. Loaded from 'self' (no inline script, CSP script-src 'self').
// The arrivals region is a polite log that only ever adds.
"use strict";
(function () {
  var POLL_MS = 3000;

  function getJson(url, done) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (body) { done(body); } })
      .catch(function () { /* the next poll tries again */ });
  }

  var list = document.getElementById("open-list");
  var arrivals = document.getElementById("arrivals");
  if (list && arrivals) {
    var seen = {};
    Array.prototype.forEach.call(list.querySelectorAll("li[data-id]"), function (li) {
      seen[li.getAttribute("data-id")] = true;
    });
    var poll = function () {
      getJson(list.getAttribute("data-poll"), function (body) {
        body.items.slice().reverse().forEach(function (item) {
          if (seen[item.id]) { return; }
          seen[item.id] = true;
          var li = document.createElement("li");
          li.setAttribute("data-id", item.id);
          li.className = "kind-" + item.kind;
          var a = document.createElement("a");
          a.href = item.url;
          a.textContent = item.title;
          li.appendChild(a);
          li.appendChild(document.createTextNode(", reported " + item.reported_at + " by " + item.reported_by));
          if (item.timeline) {
            var t = document.createElement("a");
            t.href = item.timeline;
            t.textContent = "session timeline";
            li.appendChild(document.createTextNode(" ("));
            li.appendChild(t);
            li.appendChild(document.createTextNode(")"));
          }
          list.insertBefore(li, list.firstChild);
          var empty = document.getElementById("open-empty");
          if (empty) { empty.hidden = true; }
          var p = document.createElement("p");
          p.textContent = item.title + " reported " + item.reported_at + " by " + item.reported_by + ".";
          arrivals.appendChild(p);
        });
      });
    };
    setInterval(poll, POLL_MS);
  }

  var status = document.getElementById("verify-status");
  var bar = document.getElementById("verify-progress");
  if (status && bar && status.getAttribute("data-running") === "yes") {
    var timer = setInterval(function () {
      getJson(status.getAttribute("data-poll"), function (body) {
        var run = body.run;
        if (!run) { return; }
        bar.value = run.percent;
        bar.textContent = run.percent + "%";
        var p = document.createElement("p");
        if (run.result === "running") {
          p.textContent = "Checking: " + run.checked + " of " + run.total + " entries.";
        } else if (run.result === "intact") {
          p.textContent = "Intact: " + run.checked + " entries checked.";
          p.className = "ok";
        } else if (run.result === "tampered") {
          p.textContent = "Not intact: " + run.problem + ".";
          p.className = "error";
        } else {
          p.textContent = "The check could not finish; try again.";
          p.className = "error";
        }
        if (run.result !== "running") {
          p.setAttribute("data-result", run.result);
          bar.hidden = true;
          clearInterval(timer);
        }
        status.replaceChildren(p);
      });
    }, 1000);
  }
})();
