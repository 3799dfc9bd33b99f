import { expect, test as base } from "@playwright/test";

// Every page runs under Keyport's Content-Security-Policy (no 'unsafe-inline' for scripts or
// styles). Chromium reports each blocked script, style or frame in the console; any such report
// fails the test, so a change that needs an inline script or style cannot slip in.
export const test = base.extend<{ cspGuard: void }>({
  cspGuard: [
    async ({ page }, use) => {
      const violations: string[] = [];
      page.on("console", (message) => {
        if (/Content[- ]Security[- ]Policy/i.test(message.text())) violations.push(message.text());
      });
      await use();
      expect(violations, "Content-Security-Policy violations").toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
export type { ConsoleMessage, Page } from "@playwright/test";
