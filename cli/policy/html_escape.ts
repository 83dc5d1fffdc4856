/**
 * Escaping text for HTML and inline SVG, where the report puts strings from the log (user
 * names, resources, verbs) and from the command line (file names).
 *
 * @module
 */

const ENTITIES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * `text` safe as element content and as a quoted attribute value: `& < > " '` escaped.
 *
 * @example
 * ```ts
 * escapeHtml('<script>alert("&")</script>'); // "&lt;script&gt;alert(&quot;&amp;&quot;)&lt;/script&gt;"
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]);
}
