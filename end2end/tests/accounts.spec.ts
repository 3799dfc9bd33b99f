import { expect, test } from "./fixtures";
import { steadyNow, totp } from "./totp";

const PASSWORD = "glacier lantern pepper";

test("sign up, enrol an authenticator, save recovery codes, sign out and sign in again", async ({ page }, testInfo) => {
  const problems: string[] = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(e.message));
  const shot = (name: string) => page.screenshot({ path: testInfo.outputPath(name), fullPage: true });
  const email = `dev-${Date.now()}@example.com`;

  await page.goto("/");
  await page.getByRole("link", { name: "Sign up" }).click();
  await expect(page.getByRole("heading", { name: "Create your account" })).toBeVisible();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Create account" }).click();
  // The browser's own length check does not apply (no minlength): the server explains.
  await expect(page.getByText("Use at least 12 characters.")).toBeVisible();
  await expect(page.getByLabel("Email")).toHaveValue(email);
  await shot("01-signup-error.png");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();

  // Enrolment: QR code, setup key, code.
  await expect(page.getByRole("heading", { name: "Set up two-factor authentication" })).toBeVisible();
  await expect(page.getByRole("img", { name: "QR code for your authenticator app" })).toBeVisible();
  const setupKey = (await page.getByTestId("setup-key").innerText()).trim();
  expect(setupKey).toMatch(/^[A-Z2-7]{32}$/);
  await shot("02-enrol.png");
  await page.getByLabel("Authentication code").fill("000000");
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByRole("alert")).toContainText("That code is not valid");
  await shot("03-enrol-wrong-code.png");
  // A code from the previous step (allowed drift), leaving the current one for the sign-in below.
  const now = await steadyNow();
  await page.getByLabel("Authentication code").fill(totp(setupKey, now - 30));
  await page.getByRole("button", { name: "Verify" }).click();

  // Recovery codes, once.
  await expect(page.getByRole("heading", { name: "Save your recovery codes" })).toBeVisible();
  await expect(page.getByTestId("recovery-codes").getByRole("listitem")).toHaveCount(10);
  await expect(page.getByRole("link", { name: "Download" })).toHaveAttribute("download", "keyport-recovery-codes.txt");
  await shot("04-recovery-codes.png");
  await page.getByLabel("I have saved these codes").check();
  await page.getByRole("button", { name: "Continue" }).click();

  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  await expect(page.getByTestId("signed-in-email")).toHaveText(email);
  await shot("05-dashboard.png");

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL("/");
  await expect(page.getByRole("link", { name: "Sign in" })).toBeVisible();

  // Sign in: password, then a wrong code, then the right one.
  await page.getByRole("link", { name: "Sign in" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Two-factor authentication" })).toBeVisible();
  await page.getByLabel("Authentication code").fill("123456");
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByRole("alert")).toContainText("That code is not valid");
  await shot("06-sign-in-wrong-code.png");
  await page.getByLabel("Authentication code").fill(totp(setupKey, await steadyNow()));
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByTestId("signed-in-email")).toHaveText(email);
  await shot("07-signed-in.png");

  // Settings: this session is listed; a wrong current password is explained next to the field.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Settings" }).first().click();
  await expect(page.getByRole("heading", { name: "Settings", level: 1 })).toBeVisible();
  await expect(page.getByText("This session")).toBeVisible();
  await page.getByLabel("Current password").fill("not my password at all");
  await page.getByLabel("New password").fill("new harbour lights");
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByText("Your current password is not correct.")).toBeVisible();
  await shot("08-settings.png");
  expect(problems).toEqual([]);
});

test("a wrong password is refused without saying whether the account exists", async ({ page }) => {
  await page.goto("/login");
  await page.getByLabel("Email").fill("nobody@example.com");
  await page.getByLabel("Password").fill("whatever it is here");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("Incorrect email or password.");
  await expect(page.getByLabel("Email")).toHaveValue("nobody@example.com");
});
