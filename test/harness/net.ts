export { freePort, waitFor } from '../../cli/services/net.js';
