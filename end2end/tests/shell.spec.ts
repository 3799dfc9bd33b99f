import { expect, test, type ConsoleMessage } from "./fixtures";

// Console errors and failed requests fail the test: they are what a broken hydration looks like.
function watchForErrors(page: import("@playwright/test").Page) {
  const problems: string[] = [];
  page.on("console", (msg: ConsoleMessage) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("response", (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  return problems;
}

test("landing page renders styled, hydrates, and the theme toggle works", async ({ page }, testInfo) => {
  const problems = watchForErrors(page);
  const assets: Record<string, number> = {};
  page.on("response", (res) => {
    const url = new URL(res.url());
    if (url.pathname.startsWith("/pkg/")) assets[url.pathname] = res.status();
  });

  const landing = await page.goto("/");
  await expect(page).toHaveTitle("Keyport");
  // The page's policy: no inline code but the hydration script, which carries this page's nonce.
  const policy = landing!.headers()["content-security-policy"] ?? "";
  expect(policy).not.toContain("unsafe-inline");
  expect(policy).toContain("frame-ancestors 'none'");
  const nonce = /'nonce-([A-Za-z0-9_-]{22,})'/.exec(policy)?.[1];
  expect(nonce, policy).toBeTruthy();
  const scriptNonces = await page.locator("script").evaluateAll((scripts) => scripts.map((s) => (s as HTMLScriptElement).nonce));
  expect(scriptNonces.length).toBeGreaterThan(0);
  expect(scriptNonces.every((n) => n === nonce)).toBe(true);
  expect(landing!.headers()["cross-origin-opener-policy"]).toBe("same-origin");
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Keyport");

  // Tailwind is loaded: the primary heading is styled, not the browser default.
  const fontWeight = await page.getByRole("heading", { level: 1 }).evaluate((el) => getComputedStyle(el).fontWeight);
  expect(fontWeight).toBe("600");

  // The island hydrates (this needs the WASM bundle) ...
  const toggle = page.getByRole("button", { name: "Dark theme" });
  await expect(toggle).toHaveAttribute("data-hydrated", "true");
  expect(assets["/pkg/keyport.css"]).toBe(200);
  expect(assets["/pkg/keyport.js"]).toBe(200);
  expect(assets["/pkg/keyport.wasm"]).toBe(200);

  // ... and toggling changes the theme, which a reload keeps (cookie, rendered by the server).
  const html = page.locator("html");
  const before = await toggle.getAttribute("aria-pressed");
  const backgroundBefore = await page.locator("body").evaluate((el) => getComputedStyle(el).backgroundColor);
  await toggle.click();
  const after = before === "true" ? "false" : "true";
  await expect(toggle).toHaveAttribute("aria-pressed", after);
  await expect(html).toHaveClass(after === "true" ? "dark" : "light");
  const bodyBackground = () => page.locator("body").evaluate((el) => getComputedStyle(el).backgroundColor);
  expect(await bodyBackground()).not.toBe(backgroundBefore);

  await page.reload();
  await expect(html).toHaveClass(after === "true" ? "dark" : "light");
  await expect(page.getByRole("button", { name: "Dark theme" })).toHaveAttribute("aria-pressed", after);

  await page.screenshot({ path: testInfo.outputPath("landing.png"), fullPage: true });
  expect(problems).toEqual([]);
});

test("on a phone the menu button opens and closes the navigation", async ({ page }, testInfo) => {
  const problems = watchForErrors(page);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto("/");
  const menu = page.getByRole("button", { name: "Menu" });
  await expect(page.getByRole("button", { name: "Dark theme" })).toHaveAttribute("data-hydrated", "true");
  await expect(menu).toHaveAttribute("aria-expanded", "false");
  await expect(page.locator("#mobile-nav")).toBeHidden();

  await menu.click();
  await expect(menu).toHaveAttribute("aria-expanded", "true");
  const features = page.locator("#mobile-nav").getByRole("link", { name: "Features" });
  await expect(features).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath("mobile-menu.png") });

  await features.click();
  await expect(page.locator("#mobile-nav")).toBeHidden();
  await expect(page).toHaveURL(/#features$/);
  expect(problems).toEqual([]);
});

test("an unknown address shows the 404 page with a way home", async ({ page }) => {
  const response = await page.goto("/no/such/page");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
  await page.getByRole("link", { name: "Go to the home page" }).click();
  await expect(page).toHaveURL("/");
});
