// The query page (templates/query.html): load a named query into the editor, run it on
// /sparql and show the answer. Served as a file, so that the pages' policy allows no inline script.
(() => {
  const names = JSON.parse(document.getElementById("query-names").textContent);
  const texts = JSON.parse(document.getElementById("query-texts").textContent);
  const editor = document.getElementById("query-text");
  const status = document.getElementById("status");
  const results = document.getElementById("results");
  for (const button of document.querySelectorAll("button.load")) {
    button.addEventListener("click", () => {
      editor.value = texts[names.indexOf(button.dataset.query)];
      status.textContent = "loaded " + button.dataset.query;
    });
  }
  const cell = (tag, text) => { const el = document.createElement(tag); el.textContent = text; return el; };
  function table(data) {
    const t = document.createElement("table");
    t.id = "result-table";
    const head = t.insertRow();
    for (const v of data.head.vars) head.appendChild(cell("th", v));
    for (const b of data.results.bindings) {
      const row = t.insertRow();
      for (const v of data.head.vars) row.appendChild(cell("td", b[v] ? b[v].value : ""));
    }
    return t;
  }
  document.getElementById("query-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "running…";
    results.replaceChildren();
    const started = performance.now();
    try {
      const response = await fetch("/sparql", {
        method: "POST",
        headers: {
          "Accept": "application/sparql-results+json, text/turtle;q=0.5",
          "Content-Type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ query: editor.value }),
      });
      const type = response.headers.get("content-type") || "";
      const ms = Math.round(performance.now() - started);
      if (!response.ok) {
        results.appendChild(cell("p", await response.text())).className = "error";
        status.textContent = "error " + response.status;
      } else if (type.includes("sparql-results+json")) {
        const data = await response.json();
        if ("boolean" in data) {
          results.appendChild(cell("p", "answer: " + data.boolean));
          status.textContent = "done in " + ms + " ms";
        } else {
          results.appendChild(table(data));
          status.textContent = data.results.bindings.length + " row(s) in " + ms + " ms";
        }
      } else {
        results.appendChild(cell("pre", await response.text()));
        status.textContent = "done in " + ms + " ms";
      }
    } catch (error) {
      results.appendChild(cell("p", String(error))).className = "error";
      status.textContent = "failed";
    }
  });
})();
