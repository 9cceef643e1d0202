/* City IOC: when the session has ended (idle, maximum age, password changed, account
   disabled), the display's next refresh is answered 401. A wall that silently stopped
   updating would look live while blind, so go to the sign-in page instead. */
(function () {
  var original = window.fetch;
  if (!original) { return; }
  var leaving = false;
  window.fetch = function () {
    return original.apply(this, arguments).then(function (resp) {
      if (resp.status === 401 && String(resp.url).indexOf('/_dash-') >= 0) {
        if (!leaving) {
          leaving = true;
          window.location.assign('/login?next=' + encodeURIComponent(window.location.pathname));
        }
        return new Promise(function () {});   /* the page is leaving: Dash need not handle it */
      }
      return resp;
    });
  };
})();
