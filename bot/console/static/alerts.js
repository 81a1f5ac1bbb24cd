"use strict";
// Live alert for new urgent cases: polls the console every 5 seconds, shows a banner
// and plays a tone. No personal data is fetched, only references.
(function () {
  const table = document.querySelector("table.cases");
  const banner = document.getElementById("alert-banner");
  if (!table || !banner) return;
  let lastId = Number(table.dataset.lastId || 0);
  function beep() {
    try {
      const ctx = new AudioContext();
      const osc = ctx.createOscillator();
      osc.frequency.value = 880;
      osc.connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.4);
    } catch (e) { /* audio blocked until the user interacts with the page */ }
  }
  async function poll() {
    try {
      const res = await fetch("/console/alerts.json?after=" + lastId, {credentials: "same-origin"});
      if (!res.ok) return;
      const body = await res.json();
      if (body.cases.length) {
        lastId = Math.max(lastId, ...body.cases.map((c) => c.id));
        banner.textContent = "KASUS DARURAT BARU: " + body.cases.map((c) => c.reference).join(", ") + " (muat ulang halaman)";
        banner.hidden = false;
        document.title = "(!) " + document.title.replace(/^\(!\) /, "");
        beep();
      }
    } catch (e) { /* offline: next tick */ }
  }
  setInterval(poll, 5000);
})();
