// Signing in as a brand-new admin, as the README has it: the first admin comes from the command
// line, then signs in and sets up two-factor authentication.
import type { Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { steadyNow, totp } from "./totp";

export const PASSWORD = "glacier lantern pepper";

export async function signInNewAdmin(page: Page, email: string) {
  execFileSync(process.env.KEYPORT_E2E_BIN!, ["admin", "create", "--email", email, "--data-dir", process.env.KEYPORT_E2E_DATA_DIR!], {
    env: { ...process.env, KEYPORT_ADMIN_PASSWORD: PASSWORD, KEYPORT_LOG: "warn" },
  });
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  const setupKey = (await page.getByTestId("setup-key").innerText()).trim();
  await page.getByLabel("Authentication code").fill(totp(setupKey, (await steadyNow()) - 30));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByLabel("I have saved these codes").check();
  await page.getByRole("button", { name: "Continue" }).click();
}
