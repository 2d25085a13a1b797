// Workflow editor: add a step from the formset's empty form and redraw the diagram.
(function () {
  const button = document.getElementById("add-step");
  if (!button) return;
  button.addEventListener("click", function () {
    const total = document.getElementById("id_steps-TOTAL_FORMS");
    const index = parseInt(total.value, 10);
    const html = document.getElementById("empty-step").innerHTML.replace(/__prefix__/g, String(index));
    button.closest("div").insertAdjacentHTML("beforebegin", html);
    total.value = String(index + 1);
    const form = document.getElementById("workflow-form");
    form.dispatchEvent(new Event("change", { bubbles: true }));
  });
})();
