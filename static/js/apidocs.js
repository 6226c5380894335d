// /v1/docs: start Swagger UI (from django-ninja's packaged bundle) with the key typed
// on this page. The key stays in this page: it is added to the requests Swagger UI
// sends and never stored.
(function () {
  "use strict";
  var settings = JSON.parse(document.getElementById("swagger-settings").textContent);
  var keyInput = document.getElementById("apidocs-key");
  settings.dom_id = "#swagger-ui";
  settings.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];
  settings.requestInterceptor = function (request) {
    var key = keyInput && keyInput.value.trim();
    if (key) request.headers.Authorization = "Bearer " + key;
    return request;
  };
  window.ui = SwaggerUIBundle(settings);
})();
