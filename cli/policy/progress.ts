/**
 * The progress bar drawn on a terminal's stderr while a large input is read: the CLI's shared
 * one (`cli/progress.ts`), re-exported where the policy tools have always imported it.
 *
 * @module
 */
export { Progress, PROGRESS_MIN_BYTES } from "../progress.ts";
