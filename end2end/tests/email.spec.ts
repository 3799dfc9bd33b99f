// The email flows on the Keyport that sends email (see playwright.config.ts): each message is read
// from the real SMTP server's maildir, rendered in Chromium as the recipient would see it
// (screenshots in test-results), and its button followed.
import * as fs from "node:fs";
import * as path from "node:path";
import { type ParsedMail, simpleParser } from "mailparser";
import { expect, type Page, test } from "./fixtures";
import { steadyNow, totp } from "./totp";

const mailURL = process.env.KEYPORT_E2E_MAIL_URL!;
const maildir = process.env.KEYPORT_E2E_MAILDIR!;

/** The newest message to `to` with this subject, waiting up to 15 s for it. */
async function mailTo(to: string, subject: string): Promise<ParsedMail> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const dir = path.join(maildir, "new");
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : [];
    files.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
    for (const file of files) {
      const mail = await simpleParser(fs.readFileSync(file));
      const recipient = Array.isArray(mail.to) ? mail.to[0] : mail.to;
      if (recipient?.value[0]?.address === to && mail.subject === subject) return mail;
    }
    if (Date.now() > deadline) throw new Error(`no "${subject}" to ${to}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Shows the message as HTML in a page of its own (as a mail client would: no Keyport CSP), screenshots
 * it, and follows its button in the Keyport page.
 */
async function openMail(page: Page, mail: ParsedMail, button: string, shot: string, testInfo: { outputPath(n: string): string }) {
  expect(mail.text).toContain(mailURL);
  const href = await showMail(page, mail, shot, testInfo, button);
  expect(href.startsWith(mailURL)).toBeTruthy();
  await page.goto(href);
}

/** Renders the mail in a blank page and screenshots it; returns the href of `button`, if asked. */
async function showMail(page: Page, mail: ParsedMail, shot: string, testInfo: { outputPath(n: string): string }, button?: string): Promise<string> {
  const viewer = await page.context().newPage();
  await viewer.setContent(mail.html || "");
  await viewer.screenshot({ path: testInfo.outputPath(shot), fullPage: true });
  const href = button ? ((await viewer.getByRole("link", { name: button }).getAttribute("href")) ?? "") : "";
  await viewer.close();
  return href;
}

test("email: confirm the address from the mail, forget the password, reset it, and sign in with a code", async ({ page }, testInfo) => {
  const shot = (name: string) => page.screenshot({ path: testInfo.outputPath(name), fullPage: true });
  const email = `mail-${Date.now()}@example.com`;
  const PASSWORD = "glacier lantern pepper";

  // Sign-up answers "check your inbox" and signs nobody in.
  await page.goto(`${mailURL}/signup`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByRole("status")).toContainText(`Check your inbox: we sent a message to ${email}`);
  await shot("email-01-check-inbox.png");

  const confirm = await mailTo(email, "Confirm your email address for Keyport");
  await openMail(page, confirm, "Confirm email address", "email-02-mail-confirm.png", testInfo);
  await expect(page.getByRole("heading", { name: "Confirm your email address" })).toBeVisible();
  await page.getByRole("button", { name: "Confirm email address" }).click();
  await expect(page.getByRole("status")).toHaveText(`${email} is confirmed. Sign in to create API keys.`);

  // Sign in and enrol: the dashboard asks for nothing more.
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  const setupKey = (await page.getByTestId("setup-key").innerText()).trim();
  const now = await steadyNow();
  await page.getByLabel("Authentication code").fill(totp(setupKey, now - 30));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByLabel("I have saved these codes").check();
  await page.getByRole("button", { name: "Continue" }).click();
  await expect(page.getByTestId("signed-in-email")).toHaveText(email);
  await expect(page.getByTestId("confirm-email")).toHaveCount(0);
  await page.getByRole("button", { name: "Sign out" }).click();

  // Forgot password, from the sign-in page.
  await page.goto(`${mailURL}/login`);
  await page.getByRole("link", { name: "Forgot password?" }).click();
  await expect(page.getByRole("heading", { name: "Reset your password" })).toBeVisible();
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Send reset link" }).click();
  await expect(page.getByRole("status")).toContainText("Check your inbox");
  const reset = await mailTo(email, "Reset your Keyport password");
  expect(reset.text).toContain("expires in 1 hour");
  await openMail(page, reset, "Choose a new password", "email-03-mail-reset.png", testInfo);
  await expect(page.getByRole("heading", { name: "Choose a new password" })).toBeVisible();
  await page.getByLabel("New password").fill("short");
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByText("Use at least 12 characters.")).toBeVisible();
  await shot("email-04-reset-form.png");
  const newPassword = "harbour lights at dawn";
  await page.getByLabel("New password").fill(newPassword);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByRole("status")).toContainText("Your password was changed");

  // The new password, then still the second factor.
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(newPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Two-factor authentication" })).toBeVisible();
  await page.getByLabel("Authentication code").fill(totp(setupKey, await steadyNow()));
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByTestId("signed-in-email")).toHaveText(email);

  const changed = await mailTo(email, "Your Keyport password was changed");
  await showMail(page, changed, "email-05-mail-password-changed.png", testInfo);
  expect(changed.text).not.toContain(newPassword);
});
