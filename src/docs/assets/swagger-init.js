// Starts Swagger UI on /docs (a file of its own: the page's
// Content-Security-Policy allows no inline script). "Try it out" calls this
// same origin; authorizations last as long as the page (not persisted).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    persistAuthorization: false,
    deepLinking: false,
    withCredentials: false,
    displayRequestDuration: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    supportedSubmitMethods: ["get", "post", "patch", "delete"],
  });
});
