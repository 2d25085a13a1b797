// Dashboard charts from the figures the page embeds with json_script.
(function () {
  if (typeof Chart === "undefined") return;
  const read = (id) => JSON.parse(document.getElementById(id).textContent);
  const states = read("data-states");
  new Chart(document.getElementById("chart-states"), {
    type: "bar",
    data: {
      labels: states.map((s) => s.label),
      datasets: [{ data: states.map((s) => s.count), backgroundColor: "#0d6efd" }],
    },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  const steps = read("data-steps");
  new Chart(document.getElementById("chart-steps"), {
    type: "bar",
    data: {
      labels: steps.map((s) => s.step),
      datasets: [{ data: steps.map((s) => s.hours), backgroundColor: "#198754" }],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } },
  });
})();
