// Charts of the results page and the rounds dashboard, drawn from the tables beside them
// (rows with data-label, data-value, data-low, data-high), so without JavaScript the table
// is the chart. Chart.js 4 (vendored): a floating bar from low to high is the interval,
// a point on it the estimate.
(function () {
  "use strict";

  const TABLES = { negative: "negative-table", base: "base-table", bt: "bt-table" };
  const TITLES = {
    negative: "Share with problems",
    base: "Win rate vs base",
    bt: "Bradley–Terry score",
  };

  function rows(tableId) {
    const table = document.getElementById(tableId);
    if (!table) return [];
    return Array.from(table.querySelectorAll("tbody tr[data-value]")).map(function (tr) {
      return {
        label: tr.dataset.label,
        value: parseFloat(tr.dataset.value),
        low: parseFloat(tr.dataset.low),
        high: parseFloat(tr.dataset.high),
      };
    });
  }

  function draw(canvas) {
    const kind = canvas.dataset.chart;
    const data = rows(TABLES[kind]);
    if (!data.length || typeof window.Chart === "undefined") return;
    const share = kind !== "bt";
    // Scores sit near 1000: an axis from 0 would flatten their differences.
    const scale = share ? { min: 0, max: 1 } : { beginAtZero: false, grace: "10%" };
    new window.Chart(canvas, {
      data: {
        labels: data.map((d) => d.label),
        datasets: [
          {
            type: "bar",
            label: "95 % interval",
            data: data.map((d) => [d.low, d.high]),
            backgroundColor: "rgba(31, 95, 191, 0.25)",
            borderColor: "rgba(31, 95, 191, 0.8)",
            borderWidth: 1,
            barPercentage: 0.3,
          },
          {
            type: "line",
            label: TITLES[kind],
            data: data.map((d) => d.value),
            showLine: kind !== "bt",
            borderColor: "#1d232b",
            backgroundColor: "#1d232b",
            pointRadius: 5,
          },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { y: Object.assign({ title: { display: true, text: TITLES[kind] } }, scale) },
      },
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  });
})();
