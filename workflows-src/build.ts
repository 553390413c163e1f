// Placeholder until the workflow generators land (issue: typed workflow generators).
// It exists so `npm run generate` has one entry point for every generated file.
export {};
