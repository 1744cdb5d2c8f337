// The exported ONNX model in the browser: onnxruntime-web's WebAssembly backend (multi-threaded
// when the page is cross-origin isolated, which `emotion serve` arranges), one batch of views.

export class Classifier {
  /** Loads onnxruntime-web on first use, so a browser without WebAssembly still gets the page. */
  static async create(base, contract, variant = "fp32") {
    const ort = await import("../vendor/ort/ort.wasm.min.mjs");
    const entry = contract.json.files[variant];
    if (!entry) throw new Error(`model.json has no ${variant} model (has ${Object.keys(contract.json.files).join(", ")})`);
    ort.env.wasm.wasmPaths = `${base}vendor/ort/`;
    const session = await ort.InferenceSession.create(`${base}model/${entry.path}`, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
    return new Classifier(ort, session, contract, variant);
  }

  constructor(ort, session, contract, variant) {
    this.ort = ort;
    this.session = session;
    this.contract = contract;
    this.variant = variant;
    this.threads = ort.env.wasm.numThreads;
  }

  /** Float32 (views, C, H, W) inputs -> logits of every view. */
  async logits(inputs) {
    const { in_chans: c, image_size: s } = this.contract.prep;
    const tensor = new this.ort.Tensor("float32", inputs, [inputs.length / (c * s * s), c, s, s]);
    const out = await this.session.run({ [this.contract.inputName]: tensor });
    return out[this.contract.outputName].data;
  }
}
