// Starts every ECharts chart on the page: an element with data-chart-option="<id>" whose
// option is the JSON of the <script type="application/json" id="<id>"> that Django's
// json_script wrote (templates/analytics/_chart.html). The option is data, never code, so
// the site's CSP (no inline scripts, no eval) holds. Needs vendor/echarts.min.js first.
(function () {
  "use strict";

  const SELECTOR = "[data-chart-option]";

  function charts(root) {
    if (!root || !root.querySelectorAll) return [];
    const found = Array.from(root.querySelectorAll(SELECTOR));
    if (root.matches && root.matches(SELECTOR)) found.unshift(root);
    return found;
  }

  function start(root) {
    if (!window.echarts) return;
    charts(root).forEach((element) => {
      // Already started (a second afterSettle for the same content): leave it as it is.
      if (window.echarts.getInstanceByDom(element)) return;
      const source = document.getElementById(element.dataset.chartOption);
      if (!source) return;
      const chart = window.echarts.init(element, null, { renderer: "canvas" });
      chart.setOption(JSON.parse(source.textContent));
    });
  }

  function stop(root) {
    if (!window.echarts) return;
    charts(root).forEach((element) => {
      const chart = window.echarts.getInstanceByDom(element);
      if (chart) chart.dispose();
    });
  }

  function resize() {
    if (!window.echarts) return;
    charts(document).forEach((element) => {
      const chart = window.echarts.getInstanceByDom(element);
      if (chart) chart.resize();
    });
  }

  document.addEventListener("DOMContentLoaded", () => start(document));
  // Charts hold timers and listeners; dispose of those in the content about to be replaced,
  // and start the ones that came in once htmx has settled them into the page.
  document.addEventListener("htmx:beforeSwap", (event) => stop(event.detail.target));
  document.addEventListener("htmx:afterSettle", () => start(document));

  let pending = null;
  window.addEventListener("resize", () => {
    // One resize per burst of events (dragging a window edge fires dozens).
    if (pending) window.clearTimeout(pending);
    pending = window.setTimeout(resize, 150);
  });
})();
