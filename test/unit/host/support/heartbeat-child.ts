/**
 * A child process that only beats (heartbeat.ts, the engine's end) and waits: the transport test's
 * stand-in for an engine process, without loading any model.
 */
import { startHeartbeat } from '../../../../electron/host/engine-process/heartbeat.js';

startHeartbeat();
setInterval(() => undefined, 60_000);
