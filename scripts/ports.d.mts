export declare const BLOCKED_PORTS: ReadonlySet<number>;
export declare function shiftedPort(port: number, offset: number): number;
