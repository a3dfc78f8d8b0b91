/* Starts Swagger UI on the /docs page (api/routers/docs.py) from the vendored bundle: no network but this hub.
 * The page says where the OpenAPI document is (data-openapi-url); no inline script, so the page's
 * Content-Security-Policy can allow scripts from this origin only. */
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // the default would send the document to validator.swagger.io
    presets: [window.SwaggerUIBundle.presets.apis],
  });
})();
