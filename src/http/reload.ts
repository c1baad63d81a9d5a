// What a config reload changes in L7 mode's thread settings: the routes, the certificate set and the WAF's
// rules, nothing else (limits, addresses, ticket keys wait for a restart). Both sides keep their copy current with it: the
// main thread's, which threads started later boot with (src/node/l7-settings.ts), and a listener's own
// input, which a restart of that actor re-inits with (src/actors/listener.ts).
import type { L7Update } from '../messages.ts';
import type { L7Settings } from './setup.ts';

export function withUpdate(settings: L7Settings, update: L7Update): L7Settings {
  const { tls } = settings;
  return {
    ...settings,
    routes: update.routes,
    tls: tls === null || update.certificates === null ? tls : { ...tls, certificates: update.certificates },
    waf: settings.waf === null || update.waf === null ? settings.waf : update.waf,
  };
}
