// anibench report: sortable tables, a filterable case gallery, links from cells to cases.
// No dependencies; the data is the JSON block with id "report-data".
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const PAGE = 12;
  const state = { model: "", condition: "", label: "", style: "", search: "", page: 0 };

  // ---- sortable tables -------------------------------------------------------------
  function sortTable(table, column, header) {
    const body = table.tBodies[0];
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach((th) => th.removeAttribute("aria-sort"));
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const rows = Array.from(body.rows);
    const key = (row) => {
      const cell = row.cells[column];
      const raw = cell.getAttribute("data-value");
      if (raw === null || raw === "") return null;
      const number = Number(raw);
      return Number.isNaN(number) ? raw : number;
    };
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === null && y === null) return 0;
      if (x === null) return 1; // empty cells last, whatever the direction
      if (y === null) return -1;
      const order = x < y ? -1 : x > y ? 1 : 0;
      return ascending ? order : -order;
    });
    rows.forEach((row) => body.appendChild(row));
  }
  document.querySelectorAll("table.board").forEach((table) => {
    table.querySelectorAll("thead th").forEach((th, index) => {
      th.addEventListener("click", () => sortTable(table, index, th));
    });
  });

  // ---- gallery ---------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  function fillSelect(id, values) {
    const select = $(id);
    values.forEach((v) => {
      const option = document.createElement("option");
      option.value = v;
      option.textContent = v;
      select.appendChild(option);
    });
  }
  fillSelect("f-model", data.models);
  fillSelect("f-condition", data.conditions);
  fillSelect("f-label", data.labels);
  fillSelect("f-style", data.styles);

  function matches(entry) {
    if (state.condition && entry.condition !== state.condition) return false;
    if (state.label && (entry.label || data.no_group) !== state.label) return false;
    if (state.style && (entry.style || data.no_group) !== state.style) return false;
    if (state.model && !(state.model in entry.clips)) return false;
    if (state.search && !entry.case_id.toLowerCase().includes(state.search.toLowerCase())) return false;
    return true;
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v !== undefined && v !== null) node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(typeof c === "string" ? document.createTextNode(c) : c));
    return node;
  }

  function media(kind, src, caption) {
    if (!src) return el("div", { class: "missing-media" }, [caption + ": no file"]);
    if (kind === "img") return el("img", { src: src, alt: caption, loading: "lazy" });
    return el("video", { src: src, controls: "", muted: "", loop: "", playsinline: "", preload: "metadata" });
  }

  function format(value, scorer) {
    if (value === null || value === undefined) return "–";
    const meta = data.scorers[scorer] || {};
    return meta.unit === "dB" ? value.toFixed(1) : value.toFixed(3);
  }

  function card(entry) {
    const strip = el("div", { class: "strip" });
    entry.guides.forEach((g) => {
      strip.appendChild(el("div", { class: "tile guide" }, [
        el("div", { class: "caption" }, [`guide @${g.position} (frame ${g.frame_index})`]),
        media("img", g.src, "guide"),
      ]));
    });
    strip.appendChild(el("div", { class: "tile" }, [
      el("div", { class: "caption" }, ["ground truth"]), media("video", entry.ground_truth, "ground truth"),
    ]));
    const models = state.model ? [state.model] : data.models.filter((m) => m in entry.clips);
    models.forEach((model) => {
      const clip = entry.clips[model];
      const rows = data.score_names.map((scorer, i) => {
        const status = clip.status[scorer] || "ok";
        const value = clip.values[i];
        return el("tr", { class: "status-" + status }, [
          el("td", {}, [scorer]), el("td", { class: "v" }, [status === "ok" ? format(value, scorer) : status]),
        ]);
      });
      strip.appendChild(el("div", { class: "tile clip", "data-model": model }, [
        el("div", { class: "caption" }, [model]), media("video", clip.src, model),
        el("table", { class: "scores" }, [el("tbody", {}, rows)]),
      ]));
    });
    const title = `${entry.case_id} · ${entry.condition} · ${entry.label || "no label"} · ${entry.style || "no style"}`;
    return el("div", { class: "case", "data-case": entry.case_id, "data-condition": entry.condition }, [
      el("h3", {}, [title]), el("p", { class: "prompt" }, [entry.prompt || "(no prompt)"]), strip,
    ]);
  }

  function render() {
    const shown = data.gallery.filter(matches);
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    const start = state.page * PAGE;
    const grid = $("gallery-cases");
    grid.replaceChildren(...shown.slice(start, start + PAGE).map(card));
    $("gallery-count").textContent = shown.length
      ? `${start + 1}–${Math.min(start + PAGE, shown.length)} of ${shown.length} clips`
      : "no clips match";
    $("page-prev").disabled = state.page === 0;
    $("page-next").disabled = state.page >= pages - 1;
  }

  function setFilters(filters) {
    ["model", "condition", "label", "style"].forEach((k) => {
      state[k] = filters[k] || "";
      $("f-" + k).value = state[k];
    });
    state.search = "";
    $("f-search").value = "";
    state.page = 0;
    render();
  }

  ["model", "condition", "label", "style"].forEach((k) => {
    $("f-" + k).addEventListener("change", (event) => {
      state[k] = event.target.value;
      state.page = 0;
      render();
    });
  });
  $("f-search").addEventListener("input", (event) => {
    state.search = event.target.value;
    state.page = 0;
    render();
  });
  $("page-prev").addEventListener("click", () => { state.page -= 1; render(); });
  $("page-next").addEventListener("click", () => { state.page += 1; render(); });

  // ---- links from table cells to their cases ----------------------------------------
  function filtersFromHash() {
    const [, query] = location.hash.split("?");
    const filters = {};
    new URLSearchParams(query || "").forEach((v, k) => { filters[k] = v; });
    return filters;
  }
  window.addEventListener("hashchange", () => {
    if (location.hash.startsWith("#gallery")) {
      setFilters(filtersFromHash());
      $("gallery").scrollIntoView();
    }
  });
  if (location.hash.startsWith("#gallery?")) setFilters(filtersFromHash());
  else render();
})();
