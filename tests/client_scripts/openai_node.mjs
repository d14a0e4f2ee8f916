// openai-node: a streamed chat completion (its final usage) and a response.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.BASE_URL,
  apiKey: process.env.API_KEY,
  maxRetries: 0,
});
const stream = client.chat.completions.stream({
  model: process.env.MODEL,
  messages: [{ role: "user", content: "Hello Kimi" }],
  stream_options: { include_usage: true },
});
const whole = await stream.finalChatCompletion();
const response = await client.responses.create({ model: process.env.MODEL, input: "Hello" });
console.log(JSON.stringify({
  text: whole.choices[0].message.content,
  prompt: whole.usage.prompt_tokens,
  completion: whole.usage.completion_tokens,
  total: whole.usage.total_tokens,
  response_text: response.output_text,
  response_prompt: response.usage.input_tokens,
  response_completion: response.usage.output_tokens,
}));
