import { expect, test } from "./fixtures";
import { PASSWORD, signInNewAdmin } from "./admin-session";

test("an admin registers an API with scopes, creates a plan and puts a developer on it", async ({ page }, testInfo) => {
  const shot = (name: string) => page.screenshot({ path: testInfo.outputPath(name), fullPage: true });
  const email = `admin-${Date.now()}@example.com`;
  // The first admin comes from the command line, as in the README.
  await signInNewAdmin(page, email);

  // Register an API with two scopes and a deprecated version.
  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "APIs" }).click();
  await expect(page.getByRole("heading", { name: "APIs", level: 1 })).toBeVisible();
  await page.getByText("Register an API").click();
  await page.getByLabel("Slug").fill("Orders API");
  await page.getByLabel("Name").fill("Orders");
  await page.getByLabel("Scopes").fill("orders:read Read orders\norders:write Create and change orders");
  await page.getByRole("button", { name: "Register API" }).click();
  // A bad slug is explained next to the field, and the other values are kept.
  await expect(page.getByText(/lowercase letters, digits and hyphens/).first()).toBeVisible();
  await page.getByLabel("Slug").fill("orders");
  await page.getByLabel("Versions").fill("v2 active\nv1 deprecated 2027-06-30");
  await page.getByRole("button", { name: "Register API" }).click();
  await expect(page.getByText("API orders registered.")).toBeVisible();
  const row = page.getByRole("row", { name: /Orders/ });
  await expect(row).toContainText("orders:read, orders:write");
  await expect(row).toContainText("v1 (deprecated)");
  await shot("admin-01-apis.png");

  // A plan with a tighter rate limit and a monthly quota.
  await nav.getByRole("link", { name: "Plans" }).click();
  await page.getByText("Create a plan").click();
  const form = page.locator("form", { has: page.getByRole("button", { name: "Create plan" }) });
  await form.getByLabel("Name").fill("Pro");
  await form.getByLabel("Rate limit (requests)").fill("50");
  await form.getByLabel("Burst").fill("100");
  await form.getByLabel("Quota (requests)").fill("1000000");
  await form.getByLabel("Quota period").selectOption("month");
  await form.getByLabel("Max active keys per user").fill("25");
  await page.getByRole("button", { name: "Create plan" }).click();
  await expect(page.getByText("Plan Pro saved.")).toBeVisible();
  await expect(page.getByText(/50 requests\/s \(burst 100\) · 1,000,000 requests a month · up to 25 active keys/)).toBeVisible();
  await shot("admin-02-plans.png");

  // A developer signs up elsewhere; the admin puts them on Pro.
  const dev = `dev-${Date.now()}@example.com`;
  const other = await page.context().browser()!.newContext();
  const devPage = await other.newPage();
  await devPage.goto(`${testInfo.project.use.baseURL}/signup`);
  await devPage.getByLabel("Email").fill(dev);
  await devPage.getByLabel("Password").fill(PASSWORD);
  await devPage.getByRole("button", { name: "Create account" }).click();
  await expect(devPage.getByRole("heading", { name: "Set up two-factor authentication" })).toBeVisible();
  await other.close();
  await nav.getByRole("link", { name: "Users" }).click();
  const userRow = page.getByRole("row", { name: new RegExp(dev) });
  await userRow.getByLabel(`Plan of ${dev}`).selectOption({ label: "Pro" });
  await userRow.getByRole("button", { name: "Set" }).click();
  await expect(page.getByText("Plan assigned.")).toBeVisible();
  await expect(page.getByRole("row", { name: new RegExp(dev) }).getByLabel(`Plan of ${dev}`)).toHaveValue(/^pln_/);
  await shot("admin-03-users.png");

  // The audit log records it all.
  await nav.getByRole("link", { name: "Audit log" }).click();
  for (const action of ["api.create", "plan.create", "user.plan"]) {
    await expect(page.getByRole("cell", { name: action, exact: true }).first()).toBeVisible();
  }

  // On a phone, users and events are stacked cards, with nothing scrolling sideways; a user's
  // actions stay one tap (and one confirmation) away.
  await page.setViewportSize({ width: 390, height: 844 });
  const events = page.getByRole("list", { name: "Audit events, newest first" });
  await expect(events).toBeVisible();
  await expect(events.getByRole("listitem").filter({ hasText: "user.plan" }).first()).toContainText(dev);
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await shot("admin-04-audit-phone.png");
  await page.goto("/admin/users");
  const card = page.getByRole("list", { name: "Users" }).getByRole("listitem").filter({ hasText: dev });
  await expect(card).toContainText("Developer");
  await expect(card).toContainText("plan Pro");
  await card.getByText("End sessions", { exact: true }).click();
  await expect(card.getByRole("button", { name: "Confirm: end sessions" })).toBeVisible();
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await shot("admin-05-users-phone.png");
});

test("the docs page explains keys, verification and the REST API without signing in", async ({ page }, testInfo) => {
  await page.goto("/docs");
  await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
  for (const text of ["/v1/keys/verify", "/v1/auth", "/v1/openapi.json", "INSUFFICIENT_SCOPE"]) {
    await expect(page.getByText(text).first()).toBeVisible();
  }
  await page.screenshot({ path: testInfo.outputPath("docs.png"), fullPage: false });
  const openapi = await page.request.get("/v1/openapi.json");
  expect((await openapi.json()).openapi).toMatch(/^3\.1/);
});
