// A training run's page: draw its curves with the vendored Chart.js and, while the run is
// queued or running, fetch the new steps every few seconds and add them to the charts and
// to the tables beside them. Without JavaScript the tables alone show the same numbers.
(function () {
  "use strict";

  const POLL_MS = 2000;
  const COLOURS = ["#1f5fbf", "#b3261e", "#1d7a46", "#8a4fbf"];

  function lastStep(charts) {
    let last = -1;
    for (const chart of charts) {
      for (const row of chart.rows) last = Math.max(last, row[0]);
    }
    return last;
  }

  function format(value) {
    if (value === null || value === undefined) return "—";
    return Number.isInteger(value) ? String(value) : value.toPrecision(6).replace(/\.?0+(e|$)/, "$1");
  }

  function draw(spec) {
    const canvas = document.getElementById("chart-" + spec.id);
    if (!canvas) return null;
    const datasets = spec.labels.map((label, i) => ({
      label: label,
      data: [],
      borderColor: COLOURS[i % COLOURS.length],
      backgroundColor: COLOURS[i % COLOURS.length],
      borderWidth: 1.5,
      pointRadius: 0,
      spanGaps: true,
    }));
    // Reference lines (the collapse margin): a dashed dataset across the steps drawn.
    const references = spec.references.map((ref) => {
      const dataset = {
        label: ref.label,
        data: [],
        borderColor: "#ff9f1c",
        borderDash: [6, 4],
        borderWidth: 1.5,
        pointRadius: 0,
        reference: ref.y,
      };
      datasets.push(dataset);
      return dataset;
    });
    const chart = new window.Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: false,
        normalized: true,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: { type: "linear", title: { display: true, text: "optimizer step" } },
          y: spec.id === "lr" ? { ticks: { callback: (v) => Number(v).toExponential(1) } } : {},
        },
        plugins: { legend: { display: datasets.length > 1 }, decimation: { enabled: true } },
      },
    });
    return { spec: spec, chart: chart, references: references, canvas: canvas };
  }

  function addRows(drawn, rows) {
    const table = document.querySelector("#table-" + drawn.spec.id + " tbody");
    for (const row of rows) {
      const step = row[0];
      row.slice(1).forEach((value, i) => {
        if (value !== null && value !== undefined) drawn.chart.data.datasets[i].data.push({ x: step, y: value });
      });
      if (table) {
        const tr = document.createElement("tr");
        for (const [i, value] of row.entries()) {
          const td = document.createElement("td");
          td.textContent = i === 0 ? String(value) : format(value);
          tr.appendChild(td);
        }
        table.appendChild(tr);
      }
    }
    drawn.spec.rows = drawn.spec.rows.concat(rows);
    const steps = drawn.spec.rows.map((r) => r[0]);
    if (steps.length) {
      const first = Math.min(...steps);
      const last = Math.max(...steps);
      for (const ref of drawn.references) {
        ref.data = [{ x: first, y: ref.reference }, { x: last, y: ref.reference }];
      }
    }
    drawn.chart.update("none");
    drawn.canvas.dataset.points = String(drawn.spec.rows.length);
    const count = document.querySelector("#figure-" + drawn.spec.id + " .row-count");
    if (count) count.textContent = String(drawn.spec.rows.length);
  }

  function start() {
    const source = document.getElementById("chart-data");
    if (!source || !window.Chart) return;
    const data = JSON.parse(source.textContent);
    const drawn = [];
    for (const spec of data.charts) {
      const rows = spec.rows;
      spec.rows = [];
      const chart = draw(spec);
      if (!chart) continue;
      // The table already holds the first rows (server-rendered): only the chart takes them.
      const table = document.querySelector("#table-" + spec.id + " tbody");
      const saved = table ? table.innerHTML : "";
      addRows(chart, rows);
      if (table) table.innerHTML = saved;
      drawn.push(chart);
    }
    document.body.dataset.chartsDrawn = String(drawn.length);
    if (data.finished) return;

    let after = lastStep(data.charts);
    let timer = null;
    async function poll() {
      try {
        const response = await fetch(data.series_url + "?after=" + after, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        if (!response.ok) return;
        const update = await response.json();
        for (const chart of drawn) {
          const spec = update.charts.find((c) => c.id === chart.spec.id);
          if (spec && spec.rows.length) addRows(chart, spec.rows);
        }
        after = Math.max(after, lastStep(update.charts));
        if (update.finished) {
          clearInterval(timer);
          document.body.dataset.runFinished = update.status;
        }
      } catch (error) {
        // A dropped connection: try again at the next tick.
      }
    }
    timer = setInterval(poll, POLL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
