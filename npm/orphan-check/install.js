// Runs after `npm install`: fails the install, naming the package, when the platform
// package that carries the command was left out (--omit=optional, --no-optional, or a
// lockfile made elsewhere that dropped it), instead of failing later at the first run.
import { binaryPath, platformPackage, BIN_ENV } from './index.js';

if (!process.env[BIN_ENV]) {
  let supported = true;
  try {
    platformPackage();
  } catch (e) {
    supported = false;
    console.warn(`orphan-check: ${e.message}; the command will not be available here`);
  }
  if (supported) {
    try {
      binaryPath();
    } catch (e) {
      console.error(`orphan-check: ${e.message}`);
      process.exit(1);
    }
  }
}
