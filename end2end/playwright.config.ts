import { defineConfig } from "@playwright/test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

// The suite starts the release binary itself, on its own port and a throwaway data directory,
// from that directory rather than the repository: the binary carries its CSS and WASM, so pages
// only look and work right if the embedded site is served.
const port = Number(process.env.KEYPORT_E2E_PORT ?? 3197);
const baseURL = `http://127.0.0.1:${port}`;
// Set once (the config is loaded again in each worker), so tests can run the CLI on the same data.
const dataDir = (process.env.KEYPORT_E2E_DATA_DIR ??= fs.mkdtempSync(path.join(os.tmpdir(), "keyport-e2e-")));
process.env.KEYPORT_E2E_BIN ??= process.env.KEYPORT_BIN ?? path.join(path.resolve(__dirname, ".."), "target/release/keyport");
const repoRoot = path.resolve(__dirname, "..");
const binary = process.env.KEYPORT_BIN ?? path.join(repoRoot, "target/release/keyport");
const chromium = process.env.KEYPORT_CHROMIUM ?? "/usr/bin/chromium";
// A second Keyport that sends email, to a real SMTP server (Debian's aiosmtpd) keeping what it
// receives in a maildir that the email tests read.
const mailPort = Number(process.env.KEYPORT_E2E_MAIL_PORT ?? 3198);
const smtpPort = Number(process.env.KEYPORT_E2E_SMTP_PORT ?? 3196);
const mailDataDir = (process.env.KEYPORT_E2E_MAIL_DATA_DIR ??= fs.mkdtempSync(path.join(os.tmpdir(), "keyport-e2e-mail-")));
process.env.KEYPORT_E2E_MAIL_URL ??= `http://127.0.0.1:${mailPort}`;
process.env.KEYPORT_E2E_MAILDIR ??= path.join(mailDataDir, "maildir");

export default defineConfig({
  testDir: "./tests",
  outputDir: "./test-results",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: true,
  reporter: [["list"]],
  use: {
    baseURL,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: chromium,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  projects: [{ name: "chromium", use: { browserName: "chromium" } }],
  webServer: [
    {
      // Webhook endpoints on this machine (the webhook test's receiver) are allowed here only.
      command: `${binary} serve --addr 127.0.0.1:${port} --data-dir ${dataDir} --webhooks-allow-private`,
      cwd: dataDir,
      url: `${baseURL}/readyz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
      stderr: "pipe",
      env: { KEYPORT_LOG: "warn" },
    },
    {
      command: `/usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:${smtpPort} -c aiosmtpd.handlers.Mailbox ${process.env.KEYPORT_E2E_MAILDIR}`,
      port: smtpPort,
      reuseExistingServer: false,
      timeout: 30_000,
    },
    {
      command: `${binary} serve --addr 127.0.0.1:${mailPort} --data-dir ${mailDataDir}`,
      cwd: mailDataDir,
      url: `${process.env.KEYPORT_E2E_MAIL_URL}/readyz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
      stderr: "pipe",
      env: {
        KEYPORT_LOG: "warn",
        KEYPORT_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
        KEYPORT_PUBLIC_URL: process.env.KEYPORT_E2E_MAIL_URL!,
      },
    },
  ],
});
