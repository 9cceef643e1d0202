/* Ward names on the map, offline.
 *
 * Map text needs glyph files from a server; a control room may have no network. So each ward's
 * name is an HTML label (textContent: shown as text, never as HTML) placed over the map at its
 * centroid, moved with the map on every pan and zoom. The names and positions are those of the
 * map's "wards" trace (dashboard/figures.py). */
(function () {
  "use strict";

  function attach(gd) {
    var layout = gd._fullLayout;
    var sub = layout && layout.map && layout.map._subplot;
    var map = sub && sub.map;
    if (!map) { return; }
    var trace = (gd.data || []).find(function (t) { return t.name === "wards"; });
    if (!trace || !trace.text) { return; }
    var box = map.getContainer();
    var holder = box.querySelector(".ward-labels");
    if (!holder) {
      holder = document.createElement("div");
      holder.className = "ward-labels";
      box.appendChild(holder);
    }
    var key = JSON.stringify([trace.lon, trace.lat, trace.text]);
    if (holder.dataset.key !== key) {
      holder.dataset.key = key;
      holder.textContent = "";
      trace.text.forEach(function (name) {
        var el = document.createElement("div");
        el.className = "ward-label";
        el.textContent = String(name);
        holder.appendChild(el);
      });
    }
    function place() {
      var labels = holder.children;
      for (var i = 0; i < labels.length; i++) {
        var p = map.project([trace.lon[i], trace.lat[i]]);
        labels[i].style.transform = "translate(-50%, -50%) translate(" + p.x.toFixed(1) + "px," + p.y.toFixed(1) + "px)";
      }
      holder.classList.toggle("is-small", map.getZoom() < 11.6);
    }
    if (map.__iocWardLabels !== place) {
      if (map.__iocWardLabels) { map.off("move", map.__iocWardLabels); }
      map.__iocWardLabels = place;
      map.on("move", place);
    }
    place();
  }

  function watch() {
    var gd = document.querySelector("#sensor-map .js-plotly-plot");
    if (gd && !gd.__iocWardWatch && gd.on) {
      gd.__iocWardWatch = true;
      gd.on("plotly_afterplot", function () { attach(gd); });
    }
    if (gd) { attach(gd); }
  }
  setInterval(watch, 1000);
})();
